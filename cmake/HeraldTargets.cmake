# One helper per kind of target (as Abseil's absl_cc_library): every Herald target gets the same
# warnings, sanitizer flags and include root.

set(HERALD_WARNINGS -Wall -Wextra -Wshadow -Wconversion -Wold-style-cast
    -Wno-sign-conversion)
# GCC 12 takes Asio's coroutine frame allocation (its own, matched operator new and delete) for a
# mismatch in some coroutines: GCC bug 109224, a false positive fixed in GCC 13.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND HERALD_WARNINGS -Wno-mismatched-new-delete)
endif()
if(HERALD_WERROR)
  list(APPEND HERALD_WARNINGS -Werror)
endif()

set(HERALD_SANITIZER_FLAGS)
if(HERALD_SANITIZE)
  set(HERALD_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
endif()

function(_herald_common target)
  target_compile_options(${target} PRIVATE ${HERALD_WARNINGS} ${HERALD_SANITIZER_FLAGS})
  target_link_options(${target} PRIVATE ${HERALD_SANITIZER_FLAGS})
  target_compile_definitions(${target} PUBLIC BOOST_ASIO_NO_DEPRECATED)
endfunction()

# herald_library(NAME name SRCS ... DEPS ... [PUBLIC_INCLUDE dir])
function(herald_library)
  cmake_parse_arguments(H "" "NAME;PUBLIC_INCLUDE" "SRCS;DEPS" ${ARGN})
  add_library(${H_NAME} STATIC ${H_SRCS})
  _herald_common(${H_NAME})
  if(H_PUBLIC_INCLUDE)
    target_include_directories(${H_NAME} PUBLIC ${H_PUBLIC_INCLUDE})
  else()
    target_include_directories(${H_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  endif()
  target_link_libraries(${H_NAME} PUBLIC ${H_DEPS})
endfunction()

# herald_executable(NAME name SRCS ... DEPS ...)
function(herald_executable)
  cmake_parse_arguments(H "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${H_NAME} ${H_SRCS})
  _herald_common(${H_NAME})
  target_link_libraries(${H_NAME} PRIVATE ${H_DEPS})
  set_target_properties(${H_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

# herald_test(NAME name SRCS ... DEPS ... [LABELS ...] [ONE_PROCESS]): a GoogleTest binary
# registered with CTest, each test case as its own CTest test (its own process). ONE_PROCESS
# registers the binary as one CTest test instead, for tests sharing an expensive fixture per
# process (a Redis Cluster takes Redis two seconds to form); gtest still reports each case.
function(herald_test)
  cmake_parse_arguments(H "ONE_PROCESS" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT HERALD_BUILD_TESTS)
    return()
  endif()
  add_executable(${H_NAME} ${H_SRCS})
  _herald_common(${H_NAME})
  target_link_libraries(${H_NAME} PRIVATE ${H_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${H_NAME} PRIVATE HERALD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  set_target_properties(${H_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  if(H_ONE_PROCESS)
    add_test(NAME ${H_NAME} COMMAND ${H_NAME})
    set_tests_properties(${H_NAME} PROPERTIES LABELS "${H_LABELS}"
      ENVIRONMENT "HERALD_BIN_DIR=${PROJECT_BINARY_DIR}/bin;HERALD_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
    return()
  endif()
  include(GoogleTest)
  gtest_discover_tests(${H_NAME}
    PROPERTIES LABELS "${H_LABELS}"
    ENVIRONMENT "HERALD_BIN_DIR=${PROJECT_BINARY_DIR}/bin;HERALD_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
    DISCOVERY_TIMEOUT 30)
endfunction()

# herald_bench(NAME name SRCS ... DEPS ...): a Google Benchmark binary. CI runs each briefly.
function(herald_bench)
  cmake_parse_arguments(H "" "NAME" "SRCS;DEPS" ${ARGN})
  if(NOT HERALD_BUILD_BENCHMARKS)
    return()
  endif()
  add_executable(${H_NAME} ${H_SRCS})
  _herald_common(${H_NAME})
  target_link_libraries(${H_NAME} PRIVATE ${H_DEPS} benchmark::benchmark)
  set_target_properties(${H_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
endfunction()

# herald_fuzzer(NAME name SRCS ... DEPS ...): a libFuzzer target, built with HERALD_BUILD_FUZZERS
# and clang only (scripts/fuzz.sh, docs/fuzzing.md). List the parser's sources in SRCS, not only
# in DEPS, so that they carry the fuzzer's coverage instrumentation.
function(herald_fuzzer)
  cmake_parse_arguments(H "" "NAME" "SRCS;DEPS" ${ARGN})
  if(NOT HERALD_BUILD_FUZZERS OR NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    return()
  endif()
  herald_executable(NAME ${H_NAME} SRCS ${H_SRCS} DEPS ${H_DEPS})
  target_include_directories(${H_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${H_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${H_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
endfunction()

# herald_fuzz_replay_test(NAME name SRCS ... DEPS ... CORPUS dir): a fuzz target compiled as an
# ordinary test with its replay test (protocol/fuzz_replay.h), which reads the checked-in corpus
# `dir` (HERALD_FUZZ_CORPUS_DIR): every corpus file replays in every build.
function(herald_fuzz_replay_test)
  cmake_parse_arguments(H "" "NAME;CORPUS" "SRCS;DEPS" ${ARGN})
  herald_test(NAME ${H_NAME} SRCS ${H_SRCS} DEPS ${H_DEPS} LABELS unit)
  if(TARGET ${H_NAME})
    target_compile_definitions(${H_NAME} PRIVATE HERALD_FUZZ_CORPUS_DIR="${H_CORPUS}")
  endif()
endfunction()
