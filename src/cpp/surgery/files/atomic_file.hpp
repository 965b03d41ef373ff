// Writes a file so that it appears whole or not at all, and only where a
// plain file may be replaced.
#ifndef SURGERY_ATOMIC_FILE_HPP_
#define SURGERY_ATOMIC_FILE_HPP_

#include <sys/types.h>

#include <functional>
#include <string>

namespace surgery {

// Where a save to `path` writes. A symlink is followed to the file it names
// (that file is replaced, the link stays); an existing target must be a
// regular file (not a FIFO, device, socket or directory) and writable (a
// read-only file is refused, as cp refuses it); its permission bits and
// owner are kept. A dangling symlink or a NUL in the name is refused.
// All refusals are FileError naming the path.
struct SaveTarget {
  std::string path;      // after following symlinks
  bool exists = false;
  mode_t mode = 0;       // permission bits the new file gets
  uid_t uid = 0;
  gid_t gid = 0;
};
SaveTarget resolve_save_target(const std::string& path);

// A new file written beside its target and put in place by commit(): the
// constructor checks the target (resolve_save_target), calls write(fd) on a
// temporary in the target's folder and fsyncs it; commit() checks the target
// again, renames the temporary over it and fsyncs the folder. If anything
// fails (write returns false, a full disk, an exception) or commit() is never
// called, the temporary is removed and the target keeps its old content.
// Two files staged first and committed one after the other are replaced
// together except for the moment between the two renames (pair_record.hpp).
class StagedFile {
 public:
  StagedFile(const std::string& path, const std::function<bool(int fd)>& write);
  StagedFile(StagedFile&& other) noexcept;
  StagedFile& operator=(StagedFile&&) = delete;
  StagedFile(const StagedFile&) = delete;
  ~StagedFile();
  void commit();

 private:
  std::string path_;  // as given, for messages
  SaveTarget target_;
  std::string temp_;  // empty once committed or moved from
};

// Stages and commits at once.
void write_file_atomically(const std::string& path,
                           const std::function<bool(int fd)>& write);

// True if `a` and `b` name the same file: the same device and inode when both
// exist, else the same path once symlinks and `..` are resolved.
bool same_file(const std::string& a, const std::string& b);

}  // namespace surgery

#endif  // SURGERY_ATOMIC_FILE_HPP_
