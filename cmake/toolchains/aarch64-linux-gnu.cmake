# Cross build for 64-bit ARM Linux (Raspberry Pi 4/5 with 64-bit Raspberry Pi OS or Debian 12 arm64)
# with Debian's cross compiler (apt-get install g++-aarch64-linux-gnu) against an arm64 root file system
# that holds the -dev packages of the dependencies (scripts/arm64-check.sh makes one with mmdebstrap).
#
#   cmake -S . -B build-arm64 --toolchain cmake/toolchains/aarch64-linux-gnu.cmake \
#         -DVIGIL_ARM64_SYSROOT=$HOME/.cache/vigil/arm64-sysroot
#
# VIGIL_ARM64_SYSROOT (cache variable or environment variable) is that root. When qemu-aarch64-static or
# qemu-aarch64 (Debian's qemu-user-static / qemu-user) is installed, it becomes the cross-compiling
# emulator, so gtest_discover_tests and `ctest` run the arm64 binaries on the build machine.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

if(NOT VIGIL_ARM64_SYSROOT AND DEFINED ENV{VIGIL_ARM64_SYSROOT})
  set(VIGIL_ARM64_SYSROOT "$ENV{VIGIL_ARM64_SYSROOT}")
endif()
if(NOT VIGIL_ARM64_SYSROOT OR NOT EXISTS "${VIGIL_ARM64_SYSROOT}/usr/include/aarch64-linux-gnu")
  message(FATAL_ERROR
          "aarch64 toolchain: VIGIL_ARM64_SYSROOT ('${VIGIL_ARM64_SYSROOT}') is not an arm64 root with "
          "usr/include/aarch64-linux-gnu. Make one with `bash scripts/arm64-check.sh --sysroot-only` and "
          "pass -DVIGIL_ARM64_SYSROOT=<that folder> (or set the environment variable).")
endif()
# try_compile projects re-read this file without the cache: hand them the root.
set(ENV{VIGIL_ARM64_SYSROOT} "${VIGIL_ARM64_SYSROOT}")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES VIGIL_ARM64_SYSROOT)

set(CMAKE_SYSROOT "${VIGIL_ARM64_SYSROOT}")
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries, headers and CMake packages come from the root only; programs (pkg-config, python) from the
# build machine.
set(CMAKE_FIND_ROOT_PATH "${VIGIL_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The build machine's pkg-config reads the root's .pc files and prefixes the paths they print.
set(ENV{PKG_CONFIG_DIR} "")
set(ENV{PKG_CONFIG_LIBDIR}
    "${VIGIL_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${VIGIL_ARM64_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${VIGIL_ARM64_SYSROOT}")

find_program(VIGIL_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(VIGIL_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${VIGIL_QEMU_AARCH64};-L;${VIGIL_ARM64_SYSROOT}")
endif()
