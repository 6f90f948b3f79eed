# Test discovery: every tests/<module>/test_*.c is one test program; every tests/<module>/tool_*.c
# is a helper program that a Python test drives; every tests/<module>/test_*.py runs under Debian's
# python3 (which has numpy, h5py and torch). Tests whose name contains "cuda" carry the label gpu.
file(GLOB_RECURSE SRL_TEST_SOURCES CONFIGURE_DEPENDS tests/*/test_*.c)
file(GLOB_RECURSE SRL_TOOL_SOURCES CONFIGURE_DEPENDS tests/*/tool_*.c)
file(GLOB_RECURSE SRL_PY_TESTS CONFIGURE_DEPENDS tests/*/test_*.py)
list(FILTER SRL_TEST_SOURCES EXCLUDE REGEX "/tests/fuzz/")

set(SRL_TEST_ENV
  SRL_SOURCE_DIR=${CMAKE_SOURCE_DIR}
  SRL_BIN_DIR=${CMAKE_BINARY_DIR}/bin
  SRL_SHARED_DIR=${CMAKE_SOURCE_DIR}/../shared)

foreach(src ${SRL_TEST_SOURCES} ${SRL_TOOL_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  # tests may drive ZeroMQ sockets and HDF5 files directly, beside the library's own use
  target_link_libraries(${name} PRIVATE saferl srl_flags PkgConfig::ZMQ PkgConfig::HDF5)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
endforeach()

foreach(src ${SRL_TEST_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${SRL_TEST_ENV}" TIMEOUT 600)
  if(name MATCHES "cuda")
    set_tests_properties(${name} PROPERTIES LABELS gpu)
  endif()
endforeach()

find_program(SRL_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
foreach(src ${SRL_PY_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME py_${name} COMMAND ${SRL_PYTHON} ${src} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(py_${name} PROPERTIES ENVIRONMENT "${SRL_TEST_ENV}" TIMEOUT 600)
endforeach()
