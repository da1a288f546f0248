/* placeholder: implemented against ep.h */
#include "ep.h"
