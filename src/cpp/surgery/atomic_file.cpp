#include "surgery/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "surgery/errors.hpp"

namespace surgery {
namespace {

std::string folder_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

[[noreturn]] void fail(const std::string& what, const std::string& path, int err) {
  throw FileError("cannot " + what + " '" + path + "': " + std::strerror(err));
}

// New files get the mode an ordinary open() would give them.
mode_t default_file_mode() {
  const mode_t mask = umask(0);
  umask(mask);
  return 0666 & ~mask;
}

}  // namespace

void write_file_atomically(const std::string& path,
                           const std::function<bool(int fd)>& write) {
  std::string name = path + ".tmp.XXXXXX";
  std::vector<char> buffer(name.begin(), name.end());
  buffer.push_back('\0');
  const int fd = mkstemp(buffer.data());
  if (fd < 0) fail("create a temporary file beside", path, errno);
  const std::string temp(buffer.data());
  auto abandon = [&](const std::string& what, int err) {
    close(fd);
    unlink(temp.c_str());
    fail(what, path, err);
  };
  bool written = false;
  errno = 0;
  try {
    written = write(fd);
  } catch (...) {
    close(fd);
    unlink(temp.c_str());
    throw;
  }
  // errno is only meaningful when write() reports a system failure; a full
  // disk (EFBIG/ENOSPC) lands here.
  if (!written) abandon("write", errno ? errno : EIO);
  if (fchmod(fd, default_file_mode()) != 0) abandon("set the mode of", errno);
  if (fsync(fd) != 0) abandon("flush", errno);
  if (close(fd) != 0) {
    const int err = errno;
    unlink(temp.c_str());
    fail("close", path, err);
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(temp.c_str());
    fail("rename a temporary file onto", path, err);
  }
  // The rename itself is durable only once the folder is synced.
  const int dir = open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
}

}  // namespace surgery
