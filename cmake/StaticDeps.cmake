# Points the imported abseil, gRPC and yaml-cpp targets at Debian's static
# archives instead of the shared objects, keeping their names and their
# dependency graph (so CMake still orders the archives), and drops unused
# sections at link time. gRPC's own TLS stack is replaced by its "unsecure"
# build: credsync serves gRPC only on a Unix socket and on token-guarded
# plaintext TCP, and never dials gRPC over TLS; its HTTPS goes through
# libcurl and OpenSSL, which stay shared.

function(credsync_use_static_archive target archive)
  if(NOT TARGET ${target})
    return()
  endif()
  get_target_property(aliased ${target} ALIASED_TARGET)
  if(aliased)
    return()
  endif()
  set(path ${CMAKE_LIBRARY_ARCHITECTURE_DIR}/${archive})
  if(NOT EXISTS ${path})
    message(FATAL_ERROR "CREDSYNC_STATIC_DEPS: ${path} is missing (its -dev package ships it); "
                        "configure with -DCREDSYNC_STATIC_DEPS=OFF to link shared")
  endif()
  foreach(config IN ITEMS "" _NONE _RELEASE _DEBUG _RELWITHDEBINFO _MINSIZEREL)
    get_target_property(location ${target} IMPORTED_LOCATION${config})
    if(location)
      set_target_properties(${target} PROPERTIES IMPORTED_LOCATION${config} ${path})
    endif()
  endforeach()
  # A shared imported target carries a soname; an archive has none.
  set_target_properties(${target} PROPERTIES IMPORTED_NO_SONAME TRUE)
endfunction()

set(CMAKE_LIBRARY_ARCHITECTURE_DIR /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})

get_directory_property(imported_targets IMPORTED_TARGETS)
foreach(target IN LISTS imported_targets)
  if(target MATCHES "^absl::(.+)$")
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "SHARED_LIBRARY")
      credsync_use_static_archive(${target} libabsl_${CMAKE_MATCH_1}.a)
    endif()
  endif()
endforeach()
credsync_use_static_archive(gRPC::gpr libgpr.a)
credsync_use_static_archive(gRPC::upb libupb.a)
credsync_use_static_archive(gRPC::address_sorting libaddress_sorting.a)
credsync_use_static_archive(gRPC::grpc libgrpc_unsecure.a)
credsync_use_static_archive(gRPC::grpc++ libgrpc++_unsecure.a)
credsync_use_static_archive(yaml-cpp libyaml-cpp.a)
# re2 and c-ares come through gRPC's find modules: one as `-lre2`, which
# the linker would resolve to the shared object, the other as a path.
if(TARGET re2::re2)
  set_target_properties(re2::re2 PROPERTIES INTERFACE_LINK_LIBRARIES
                        "Threads::Threads;${CMAKE_LIBRARY_ARCHITECTURE_DIR}/libre2.a")
endif()
if(TARGET c-ares::cares)
  set_target_properties(c-ares::cares PROPERTIES IMPORTED_LOCATION
                        ${CMAKE_LIBRARY_ARCHITECTURE_DIR}/libcares.a)
endif()

add_compile_options(-ffunction-sections -fdata-sections)
add_link_options(-Wl,--gc-sections)
