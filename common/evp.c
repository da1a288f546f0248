/* placeholder: implemented against evp.h */
#include "evp.h"
