// Opening a file the user named, for reading: only regular files, checked
// before the first byte is read.
#ifndef SURGERY_INPUT_FILE_HPP_
#define SURGERY_INPUT_FILE_HPP_

#include <cstdint>
#include <string>

namespace surgery {

// Throws FileError naming `path` (and `what` the file was meant to be) if the
// path holds a NUL byte, cannot be opened, or is not a regular file. A FIFO
// could block forever, /dev/zero never ends and a directory holds no model:
// all are refused before reading. Opening does not block on a FIFO.
class InputFile {
 public:
  InputFile(const std::string& path, const std::string& what);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  int fd() const { return fd_; }
  int64_t size() const { return size_; }  // at opening time

 private:
  int fd_;
  int64_t size_;
};

// FileError unless `path` is usable as a file name (no NUL byte: the C
// library would silently cut the name there and open another file).
void check_path(const std::string& path);

}  // namespace surgery

#endif  // SURGERY_INPUT_FILE_HPP_
