/* placeholder: implemented against ipf.h */
#include "ipf.h"
