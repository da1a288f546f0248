/* placeholder: implemented against val.h */
#include "val.h"
