// Writes a file so that it appears whole or not at all.
#ifndef SURGERY_ATOMIC_FILE_HPP_
#define SURGERY_ATOMIC_FILE_HPP_

#include <functional>
#include <string>

namespace surgery {

// Calls write(fd) on a new temporary file in the folder of `path`, then
// fsyncs it, renames it over `path` and fsyncs the folder. If anything fails
// (write returns false, a full disk, a signal-free exception) the temporary
// is removed, `path` keeps its old content, and FileError names the cause.
void write_file_atomically(const std::string& path,
                           const std::function<bool(int fd)>& write);

}  // namespace surgery

#endif  // SURGERY_ATOMIC_FILE_HPP_
