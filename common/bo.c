/* placeholder: implemented against bo.h */
#include "bo.h"
