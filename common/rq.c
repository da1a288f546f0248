/* placeholder: implemented against rq.h */
#include "rq.h"
