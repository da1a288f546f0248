/* placeholder: implemented against sig.h */
#include "sig.h"
