# translate.cmake: rewrites a .cu file for the CUDA emulator (cuemu.h):
#   name<<<grid, block[, smem[, stream]]>>>(args)  ->  cuemu::launch(name, grid, block...)(args)
#   extern __shared__ T name[];                   ->  T *name = (T *)cuemu::dyn_smem();
# Usage: cmake -DIN=file.cu -DOUT=file.cpp -P translate.cmake
file(READ "${IN}" src)
string(REGEX REPLACE "([A-Za-z_][A-Za-z_0-9]*)<<<(([^>]|->)*)>>>\\(" "cuemu::launch(\\1, \\2)(" src "${src}")
string(REGEX REPLACE "extern __shared__ ([A-Za-z_][A-Za-z_0-9 ]*[A-Za-z_0-9]) ([A-Za-z_][A-Za-z_0-9]*)\\[\\];"
       "\\1 *\\2 = (\\1 *)cuemu::dyn_smem();" src "${src}")
if(src MATCHES "<<<|extern __shared__")
  message(FATAL_ERROR "${IN}: a launch or extern __shared__ declaration the emulator cannot rewrite")
endif()
file(WRITE "${OUT}.tmp" "#line 1 \"${IN}\"\n${src}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
