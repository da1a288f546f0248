/* placeholder: implemented against dur.h */
#include "dur.h"
