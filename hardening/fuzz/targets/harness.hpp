// What every fuzz target shares: the set-up (memory limit, quiet logs, a
// private working folder), the guard that keeps file-touching layers away
// from a fuzzer running on a shared machine, and the rule for what counts as
// a finding.
#ifndef SURGERY_FUZZ_HARNESS_HPP_
#define SURGERY_FUZZ_HARNESS_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "caffe/proto/caffe.pb.h"
#include "surgery/base/errors.hpp"

namespace fuzz {

// The budget each target gives surgery::set_memory_limit. run.sh gives
// libFuzzer -malloc_limit_mb a little above it, so one allocation past the
// budget (memory taken before the guard said yes) is reported as a finding.
constexpr uint64_t kMemoryLimit = uint64_t{256} << 20;

// Once per process: memory limit, Caffe's logs off, CPU mode, and a fresh
// private folder for the files a target writes. (Not made the working
// directory: libFuzzer resolves its relative paths after this runs.)
void init();

// A path inside that private folder.
std::string scratch_path(const std::string& name);

// Whether a definition names a layer type or a field that reads, writes or
// deletes files, or runs code (DetectionOutput's output_directory is deleted
// recursively at construction). Such inputs are skipped, not built: the
// fuzzer runs as whatever user starts it, and the load policy that refuses
// them has its own targeted tests. Mutations still produce them; only their
// construction is skipped. `net` is upgraded (parse() below), so V1
// layers have their modern type names.
bool touches_files(const caffe::NetParameter& net);

// The text parsed and upgraded as surgery::Net's loader does, or nothing if
// it was refused with a typed error.
std::optional<caffe::NetParameter> parse(const uint8_t* data, size_t size);

// Runs `f`. The typed errors (surgery::Error, and Caffe's failed CHECKs,
// which the bindings turn into CaffeError) are the expected outcome for bad
// input; anything else escapes and libFuzzer reports it (an uncaught
// exception aborts), like crashes, hangs and sanitizer reports.
template <typename F>
void expect_typed_errors(F&& f) {
  try {
    f();
  } catch (const surgery::Error&) {
  } catch (const caffe_check::CheckFailure&) {
  }
}

}  // namespace fuzz

#endif  // SURGERY_FUZZ_HARNESS_HPP_
