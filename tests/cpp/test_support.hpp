// Helpers shared by the C++ tests: fixture paths, temp folders, tiny nets.
#ifndef SURGERY_TESTS_TEST_SUPPORT_HPP_
#define SURGERY_TESTS_TEST_SUPPORT_HPP_

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace surgery::test {

// A forked child's exit status, or -1 (after killing it) if it has not
// ended in 60 s: a test whose child could hang forks and waits with this.
inline int wait_for_child(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline std::filesystem::path fixtures() {
  const char* env = std::getenv("SURGERY_FIXTURES");
  return env ? env : SURGERY_DEFAULT_FIXTURES;
}

// Skips the current test when the shared fixtures are not there.
#define SKIP_WITHOUT_FIXTURE(path)                                   \
  if (!std::filesystem::exists(path)) {                              \
    GTEST_SKIP() << "fixture not found: " << (path);                 \
  }

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "surgery-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name, const std::string& content = "") const {
    const auto p = path_ / name;
    if (!content.empty()) std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

// Input 1x1x4x4 -> 2x2 convolution (1 output) -> InnerProduct(2).
inline const char* kTinyNet = R"(
name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 1 kernel_size: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 2 } }
)";

}  // namespace surgery::test

#endif  // SURGERY_TESTS_TEST_SUPPORT_HPP_
