/* placeholder: implemented against pat.h */
#include "pat.h"
