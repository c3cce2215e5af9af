# runnel_bundle(<name> ROOT <target> [KEEP <target>...]
#               [INSTALL_AS <link item> <installed target>...]):
# a static library <name> that holds the objects of <target> and of every
# static library of this project it links, directly or not, so that an
# installed package exports one archive instead of internal libraries.
# The objects are the ones already built; nothing is compiled again.
#
# What the merged libraries link and is not merged becomes the bundle's
# link interface (link-only: no compile requirements reach its users):
# targets in KEEP (installed on their own), imported targets and plain
# libraries. INSTALL_AS pairs map a link item, such as a find_library path,
# to the imported target the package config creates for it. INTERFACE
# libraries of this project are looked through for what they link.
#
# Reads LINK_LIBRARIES at configure time: call it after every
# add_subdirectory. A generator expression in the graph is an error (the
# walk cannot know which branch applies).
function(runnel_bundle name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "ROOT" "KEEP;INSTALL_AS")
  set(pending ${arg_ROOT})
  set(seen)
  set(merged)
  set(links)
  while(pending)
    list(POP_FRONT pending t)
    if(t IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${t})
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "STATIC_LIBRARY")
      list(APPEND merged ${t})
      get_target_property(deps ${t} LINK_LIBRARIES)
    else()
      get_target_property(deps ${t} INTERFACE_LINK_LIBRARIES)
    endif()
    if(NOT deps)
      continue()
    endif()
    foreach(dep IN LISTS deps)
      if(dep MATCHES "^::@")  # directory markers of target_link_libraries
        continue()
      endif()
      if(dep MATCHES "\\$<")
        message(FATAL_ERROR "runnel_bundle(${name}): ${t} links ${dep}, a generator expression")
      endif()
      if(TARGET ${dep})
        get_target_property(aliased ${dep} ALIASED_TARGET)
        if(aliased)
          set(dep ${aliased})
        endif()
        get_target_property(imported ${dep} IMPORTED)
        get_target_property(dep_type ${dep} TYPE)
        if(imported OR dep IN_LIST arg_KEEP)
          list(APPEND links ${dep})
        elseif(dep_type STREQUAL "STATIC_LIBRARY" OR dep_type STREQUAL "INTERFACE_LIBRARY")
          list(APPEND pending ${dep})
        else()
          message(FATAL_ERROR "runnel_bundle(${name}): ${t} links ${dep}, a ${dep_type}")
        endif()
      else()
        list(APPEND links ${dep})
      endif()
    endforeach()
  endwhile()
  list(REMOVE_DUPLICATES links)

  set(pairs ${arg_INSTALL_AS})
  while(pairs)
    list(POP_FRONT pairs item installed)
    list(FIND links "${item}" i)
    if(i GREATER -1)
      list(REMOVE_AT links ${i})
      list(INSERT links ${i} "$<BUILD_INTERFACE:${item}>$<INSTALL_INTERFACE:${installed}>")
    endif()
  endwhile()

  add_library(${name} STATIC)
  foreach(t IN LISTS merged)
    target_sources(${name} PRIVATE $<TARGET_OBJECTS:${t}>)
  endforeach()
  set_target_properties(${name} PROPERTIES LINKER_LANGUAGE CXX)
  target_link_libraries(${name} PRIVATE ${links})
endfunction()
