# Code compiled into both the host (VMM, root partition, tools, unit tests) and the freestanding
# guest kernel: the ABI headers, the guest's portable library code, and later the VMBus ring, the
# txfs core and NUMA ordering. A shared .cpp is listed once, in one hvkvm_shared_library() call,
# and built twice: once with host flags (unit-tested with Catch2, fuzzed), once with guest flags.

# Headers that describe the VMM <-> guest ABI (boot info, hypercalls), compiled by both sides.
add_library(hvkvm_abi INTERFACE)
target_include_directories(hvkvm_abi INTERFACE ${CMAKE_SOURCE_DIR}/abi/include)

# The guest's compiler flags as a named target: freestanding C++20 without exceptions, RTTI, red
# zone, SSE or PIC. Every object that ends up in guest-kernel.elf is compiled with exactly these.
add_library(hvkvm_guest_options INTERFACE)
set(HVKVM_GUEST_CXX_FLAGS
  -ffreestanding -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit
  -mno-red-zone -mgeneral-regs-only -mcmodel=small -fno-pic -fno-pie
  -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-omit-frame-pointer
  -O2 -g -Wall -Wextra -Wshadow -Werror=return-type)
target_compile_options(hvkvm_guest_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:${HVKVM_GUEST_CXX_FLAGS}> $<$<COMPILE_LANGUAGE:ASM>:-fno-pie>)

# hvkvm_shared_library(NAME SOURCES file... [INCLUDE_DIRS dir...] [DEPENDS shared-lib...])
#   NAME        static library with host flags (link it into host code and unit tests)
#   NAME_guest  static library with guest flags (link it into the guest kernel)
# DEPENDS names other shared libraries; each side links the matching variant.
function(hvkvm_shared_library name)
  cmake_parse_arguments(SHARED "" "" "SOURCES;INCLUDE_DIRS;DEPENDS" ${ARGN})
  if(NOT SHARED_SOURCES)
    message(FATAL_ERROR "hvkvm_shared_library(${name}): no SOURCES")
  endif()
  set(guest_depends "")
  foreach(dependency IN LISTS SHARED_DEPENDS)
    list(APPEND guest_depends ${dependency}_guest)
  endforeach()

  add_library(${name} STATIC ${SHARED_SOURCES})
  target_include_directories(${name} PUBLIC ${SHARED_INCLUDE_DIRS})
  target_link_libraries(${name} PUBLIC hvkvm_abi ${SHARED_DEPENDS} PRIVATE hvkvm_host_options)

  add_library(${name}_guest STATIC ${SHARED_SOURCES})
  target_include_directories(${name}_guest PUBLIC ${SHARED_INCLUDE_DIRS})
  target_link_libraries(${name}_guest PUBLIC hvkvm_abi ${guest_depends} PRIVATE hvkvm_guest_options)
endfunction()
