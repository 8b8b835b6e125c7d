# Fuzz targets (docs/fuzzing.md).
#
# relaylab_fuzz(NAME SOURCES ... LIBS ... CORPUS DIR): one target, relaylab_fuzz_NAME, whose
# LLVMFuzzerTestOneInput is in SOURCES and whose seed corpus is DIR.
# - With RELAYLAB_FUZZ=ON (clang only) it is a libFuzzer binary built with ASan+UBSan, and CTest
#   runs it for RELAYLAB_FUZZ_SECONDS over a scratch copy of the corpus (label fuzz).
# - Otherwise it links fuzz/replay_main.cpp, and CTest replays the seed corpus through it
#   (fuzz_replay.NAME, label unit), so every build checks that the seeds still run clean.
option(RELAYLAB_FUZZ "Build the libFuzzer targets (clang, ASan+UBSan)" OFF)
set(RELAYLAB_FUZZ_SECONDS 10 CACHE STRING "Seconds each fuzz.* CTest test fuzzes")
set(RELAYLAB_FUZZ_DICT ${PROJECT_SOURCE_DIR}/fuzz/smtp.dict)

if(RELAYLAB_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "RELAYLAB_FUZZ=ON needs clang (-DCMAKE_CXX_COMPILER=clang++)")
  endif()
  # Every object carries the coverage instrumentation and the sanitizers. clang 14's
  # -fsanitize=function cannot describe coroutine frames ("Cannot represent a difference
  # across sections"), so that one check is left out. clang 14 also needs to be told that
  # libstdc++'s <coroutine> is usable with Asio.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function
                      -fno-sanitize-recover=undefined -fno-omit-frame-pointer -gline-tables-only)
  add_compile_definitions(BOOST_ASIO_HAS_CO_AWAIT=1 BOOST_ASIO_HAS_STD_COROUTINE=1)
  add_link_options(-fsanitize=address,undefined)
  set(RELAYLAB_SANITIZED ON)
  add_custom_target(relaylab_fuzz_all)
else()
  add_library(relaylab_fuzz_replay STATIC ${PROJECT_SOURCE_DIR}/fuzz/replay_main.cpp)
  target_link_libraries(relaylab_fuzz_replay PRIVATE relaylab_warnings)
endif()

function(relaylab_fuzz name)
  cmake_parse_arguments(arg "" "CORPUS" "SOURCES;LIBS" ${ARGN})
  set(target relaylab_fuzz_${name})
  add_executable(${target} ${arg_SOURCES})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${target} PRIVATE ${arg_LIBS} relaylab_warnings)
  if(RELAYLAB_FUZZ)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    add_dependencies(relaylab_fuzz_all ${target})
    set(scratch ${CMAKE_CURRENT_BINARY_DIR}/${name}-corpus)
    add_test(NAME fuzz.${name}
             COMMAND sh -c "rm -rf '${scratch}' && mkdir -p '${scratch}' && exec \"$0\" \"$@\""
                     $<TARGET_FILE:${target}> ${scratch} ${arg_CORPUS}
                     -dict=${RELAYLAB_FUZZ_DICT} -max_total_time=${RELAYLAB_FUZZ_SECONDS}
                     -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
                     -artifact_prefix=${scratch}-crash-)
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz)
  else()
    target_link_libraries(${target} PRIVATE relaylab_fuzz_replay)
    add_test(NAME fuzz_replay.${name} COMMAND ${target} ${arg_CORPUS})
    set_tests_properties(fuzz_replay.${name} PROPERTIES LABELS unit)
  endif()
endfunction()
