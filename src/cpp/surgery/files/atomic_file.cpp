#include "surgery/files/atomic_file.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "surgery/base/errors.hpp"
#include "surgery/files/input_file.hpp"

namespace surgery {
namespace {

std::string folder_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
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

std::string real_path(const std::string& path) {
  std::vector<char> out(PATH_MAX + 1);
  if (!realpath(path.c_str(), out.data())) return "";
  return out.data();
}

// Only a regular file may be replaced: renaming over a FIFO or device node
// would turn it into a plain file, over a directory it fails half-way.
void check_replaceable(const std::string& path, const struct stat& st) {
  const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISCHR(st.st_mode)  ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : nullptr;
  if (kind) {
    throw FileError("'" + path + "' is " + kind +
                    ", not a regular file: refusing to replace it; save to a file name instead");
  }
  if (!S_ISREG(st.st_mode)) {
    throw FileError("'" + path + "' is not a regular file: refusing to replace it");
  }
  // Root may write anything, so the mode bits are checked too.
  if ((st.st_mode & 0222) == 0 || access(path.c_str(), W_OK) != 0) {
    throw FileError("'" + path + "' is read-only: refusing to replace it (as cp does); "
                    "make it writable (chmod u+w) or save under another name");
  }
}

}  // namespace

SaveTarget resolve_save_target(const std::string& path) {
  check_path(path);
  SaveTarget target;
  target.path = path;
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) fail("inspect", path, errno);
    target.mode = default_file_mode();
    return target;
  }
  if (S_ISLNK(st.st_mode)) {
    target.path = real_path(path);
    if (target.path.empty() || stat(target.path.c_str(), &st) != 0) {
      throw FileError("'" + path + "' is a symbolic link to a missing file: refusing to "
                      "write through it; remove the link or save elsewhere");
    }
  }
  check_replaceable(target.path, st);
  target.exists = true;
  target.mode = st.st_mode & 07777;
  target.uid = st.st_uid;
  target.gid = st.st_gid;
  return target;
}

StagedFile::StagedFile(const std::string& path, const std::function<bool(int fd)>& write)
    : path_(path), target_(resolve_save_target(path)) {
  std::string name = target_.path + ".tmp.XXXXXX";
  std::vector<char> buffer(name.begin(), name.end());
  buffer.push_back('\0');
  const int fd = mkostemp(buffer.data(), O_CLOEXEC);
  if (fd < 0) fail("create a temporary file beside", path, errno);
  temp_ = buffer.data();
  auto abandon = [&](const std::string& what, int err) {
    close(fd);
    unlink(temp_.c_str());
    temp_.clear();
    fail(what, path, err);
  };
  bool written = false;
  errno = 0;
  try {
    written = write(fd);
  } catch (...) {
    close(fd);
    unlink(temp_.c_str());
    temp_.clear();
    throw;
  }
  // errno is only meaningful when write() reports a system failure; a full
  // disk (EFBIG/ENOSPC) lands here.
  if (!written) abandon("write", errno ? errno : EIO);
  if (fchmod(fd, target_.mode) != 0) abandon("set the mode of", errno);
  if (target_.exists && (target_.uid != geteuid() || target_.gid != getegid())) {
    // Keep the owner where allowed (root replacing a user's file); where not,
    // the file is ours and the mode bits alone carry over.
    if (fchown(fd, target_.uid, target_.gid) != 0) errno = 0;
  }
  if (fsync(fd) != 0) abandon("flush", errno);
  if (close(fd) != 0) {
    const int err = errno;
    unlink(temp_.c_str());
    temp_.clear();
    fail("close", path, err);
  }
}

StagedFile::StagedFile(StagedFile&& other) noexcept
    : path_(std::move(other.path_)), target_(std::move(other.target_)),
      temp_(std::move(other.temp_)) {
  other.temp_.clear();
}

StagedFile::~StagedFile() {
  if (!temp_.empty()) unlink(temp_.c_str());
}

void StagedFile::commit() {
  // The target may have become something else while we wrote.
  struct stat st;
  if (lstat(target_.path.c_str(), &st) == 0) check_replaceable(target_.path, st);
  if (rename(temp_.c_str(), target_.path.c_str()) != 0) {
    const int err = errno;
    unlink(temp_.c_str());
    temp_.clear();
    fail("rename a temporary file onto", path_, err);
  }
  temp_.clear();
  // The rename itself is durable only once the folder is synced.
  const int dir = open(folder_of(target_.path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
}

void write_file_atomically(const std::string& path,
                           const std::function<bool(int fd)>& write) {
  StagedFile(path, write).commit();
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0) {
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  }
  // One does not exist (yet): compare the resolved folders and the names.
  auto resolved = [](const std::string& path) {
    const std::string whole = real_path(path);
    if (!whole.empty()) return whole;
    const std::string folder = real_path(folder_of(path));
    return (folder.empty() ? folder_of(path) : folder) + "/" + base_of(path);
  };
  return resolved(a) == resolved(b);
}

}  // namespace surgery
