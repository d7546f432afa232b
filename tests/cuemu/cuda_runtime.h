/* cuda_runtime.h for the CUDA emulator: everything is in cuemu.h */
#include "cuemu.h"
