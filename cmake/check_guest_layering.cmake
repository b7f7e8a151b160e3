# Checks that the guest kernel's modules depend on each other one way only:
#
#   lib  <-  arch, hv  <-  kernel/sync  <-  mm  <-  kernel  <-  block  <-  drivers, fs  <-  init, bench, tests
#
# A file may include headers of its own layer and of the layers to its left, and drivers, fs and
# the layers above them the freestanding libraries: VMBus ("vmbus/...") and the txfs core
# ("core/...", hvkvm_txfs_guest, whose include root is txfs/), and the SCSI definitions
# (storage/scsi/scsi_defs.h, header-only). The one exception:
# every layer may include kernel/panic.h, because a fatal error must be reportable from anywhere
# (panic() itself only reaches down: console, report page, exit port). The arch entry stubs'
# call into the kernel's handle_trap is the same kind of upcall and needs no include.
#
# Run as: cmake -DGUEST_DIR=<guest-kernel folder> -P check_guest_layering.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT GUEST_DIR)
  message(FATAL_ERROR "set GUEST_DIR")
endif()

# The layer of a path relative to the guest folder; the longest matching prefix wins.
function(layer_of path result)
  set(layers "lib/=0" "arch/=1" "hv/=1" "kernel/sync/=2" "mm/=3" "kernel/=4" "block/=5" "drivers/=6" "fs/=6"
             "init/=7" "bench/=7" "tests/=7")
  set(best_length -1)
  set(best_layer "")
  foreach(entry IN LISTS layers)
    string(REPLACE "=" ";" parts "${entry}")
    list(GET parts 0 prefix)
    list(GET parts 1 layer)
    string(LENGTH "${prefix}" length)
    string(FIND "${path}" "${prefix}" position)
    if(position EQUAL 0 AND length GREATER best_length)
      set(best_length ${length})
      set(best_layer ${layer})
    endif()
  endforeach()
  set(${result} "${best_layer}" PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE sources RELATIVE "${GUEST_DIR}" "${GUEST_DIR}/*.cpp" "${GUEST_DIR}/*.h" "${GUEST_DIR}/*.S")
set(violations 0)
foreach(source IN LISTS sources)
  layer_of("${source}" source_layer)
  if(source_layer STREQUAL "")
    message(SEND_ERROR "${source}: in no layer (add its folder to check_guest_layering.cmake)")
    math(EXPR violations "${violations} + 1")
    continue()
  endif()
  file(STRINGS "${GUEST_DIR}/${source}" includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\".*$" "\\1" header "${line}")
    if(header MATCHES "^hvkvm/" OR header STREQUAL "kernel/panic.h")
      continue()  # the shared ABI headers, and the one named exception
    endif()
    if(header MATCHES "^(vmbus|core)/" OR header STREQUAL "storage/scsi/scsi_defs.h")
      # The freestanding VMBus library (hvkvm_vmbus_guest), txfs core (hvkvm_txfs_guest) and the
      # SCSI definitions depend on nothing in the guest; their users are drivers, fs and above.
      if(source_layer LESS 5)
        message(SEND_ERROR "${source} (layer ${source_layer}) includes \"${header}\": the VMBus and txfs libraries are for drivers, fs and above")
        math(EXPR violations "${violations} + 1")
      endif()
      continue()
    endif()
    layer_of("${header}" header_layer)
    if(header_layer STREQUAL "")
      message(SEND_ERROR "${source}: includes \"${header}\", which is in no layer")
      math(EXPR violations "${violations} + 1")
    elseif(header_layer GREATER source_layer)
      message(SEND_ERROR "${source} (layer ${source_layer}) includes \"${header}\" (layer ${header_layer}): "
                         "dependencies must point to lower layers")
      math(EXPR violations "${violations} + 1")
    endif()
  endforeach()
endforeach()
list(LENGTH sources checked)
if(violations GREATER 0)
  message(FATAL_ERROR "${violations} layering violation(s) in ${checked} files")
endif()
message(STATUS "guest layering: ${checked} files, every include points to its own or a lower layer")
