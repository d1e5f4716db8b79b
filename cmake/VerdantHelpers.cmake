# verdant_add_module(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Creates library verdant_<NAME> with alias verdant::<NAME>, exported for find_package.
function(verdant_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(verdant_${name} STATIC ${ARG_SOURCES})
  add_library(verdant::${name} ALIAS verdant_${name})
  set_target_properties(verdant_${name} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME verdant_${name})
  target_include_directories(verdant_${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_options(verdant_${name} PRIVATE -Wall -Wextra)
  target_link_libraries(verdant_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  if(VERDANT_INSTALL)
    install(TARGETS verdant_${name} EXPORT verdantTargets
      ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  endif()
endfunction()

# verdant_add_test(NAME SOURCES ... DEPS ...): one GoogleTest executable, registered with CTest.
function(verdant_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    VERDANT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    VERDANT_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600)
endfunction()
