/* placeholder: implemented against id.h */
#include "id.h"
