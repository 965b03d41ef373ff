#include "surgery/files/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "surgery/base/errors.hpp"

namespace surgery {
namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

void check_path(const std::string& path) {
  if (path.find('\0') != std::string::npos) {
    throw FileError("the file name '" + path.substr(0, path.find('\0')) +
                    "\\0...' holds a NUL byte: no file can have that name");
  }
  if (path.empty()) throw FileError("empty file name");
}

InputFile::InputFile(const std::string& path, const std::string& what) {
  check_path(path);
  // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
  fd_ = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd_ < 0) throw FileError("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (fstat(fd_, &st) != 0) {
    const int err = errno;
    close(fd_);
    throw FileError("cannot stat '" + path + "': " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd_);
    throw FileError("'" + path + "' is " + kind_of(st.st_mode) + ", not a " + what +
                    " file: refused before reading");
  }
  // Back to blocking reads (a regular file never blocks, but be plain).
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  size_ = static_cast<int64_t>(st.st_size);
}

InputFile::~InputFile() { close(fd_); }

}  // namespace surgery
