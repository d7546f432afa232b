/* cuda_bf16.h for the CUDA emulator: everything is in cuemu.h */
#include "cuemu.h"
