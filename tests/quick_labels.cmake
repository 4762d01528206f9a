# Included by ctest after the discovered GoogleTest tests (tests/CMakeLists.txt):
# adds the label quick to the unit tests and to the quick integration tests.
foreach(test IN LISTS kiln_unit_tests_TESTS)
  set_tests_properties("${test}" PROPERTIES LABELS "unit;quick")
endforeach()
foreach(test IN LISTS kiln_quick_integration_tests)
  set_tests_properties("${test}" PROPERTIES LABELS "integration;quick")
endforeach()
