# runnel_flatc(<target> <fbs>...): generate C++ headers for the schemas into
# the build tree (never committed) and expose them through <target>.
# Generated headers are included as "schemas/<name>_generated.h".
function(runnel_flatc target)
  set(out_dir ${CMAKE_BINARY_DIR}/generated/schemas)
  set(headers)
  foreach(fbs IN LISTS ARGN)
    get_filename_component(name ${fbs} NAME_WE)
    set(header ${out_dir}/${name}_generated.h)
    add_custom_command(
      OUTPUT ${header}
      COMMAND ${FLATC} --cpp --scoped-enums -o ${out_dir} ${CMAKE_CURRENT_SOURCE_DIR}/${fbs}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${fbs} ${FLATC}
      COMMENT "flatc ${fbs}")
    list(APPEND headers ${header})
  endforeach()
  add_custom_target(${target}_gen DEPENDS ${headers})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE $<BUILD_INTERFACE:${CMAKE_BINARY_DIR}/generated>)
  target_link_libraries(${target} INTERFACE flatbuffers::flatbuffers)
endfunction()
