#include "surgery/files/file_digest.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <vector>
#include <cstring>
#include <stdexcept>

#include "surgery/base/errors.hpp"
#include "surgery/files/input_file.hpp"

namespace surgery {

struct Sha256::State {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  ~State() { EVP_MD_CTX_free(context); }
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  if (!state_->context || EVP_DigestInit_ex(state_->context, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL cannot start a SHA-256 digest");
  }
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t size) {
  if (EVP_DigestUpdate(state_->context, data, size) != 1) {
    throw std::runtime_error("OpenSSL failed to update a SHA-256 digest");
  }
  bytes_ += size;
}

FileDigest Sha256::finish() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(state_->context, digest, &length);
  static const char kHex[] = "0123456789abcdef";
  FileDigest out;
  out.bytes = bytes_;
  for (unsigned int i = 0; i < length; ++i) {
    out.sha256 += kHex[digest[i] >> 4];
    out.sha256 += kHex[digest[i] & 15];
  }
  return out;
}

FileDigest digest_file(const std::string& path) {
  InputFile file(path, "caffemodel");
  Sha256 hash;
  std::vector<char> buffer(1 << 20);
  ssize_t n;
  while ((n = read(file.fd(), buffer.data(), buffer.size())) != 0) {
    if (n > 0) {
      hash.update(buffer.data(), static_cast<size_t>(n));
    } else if (errno != EINTR) {
      throw FileError("cannot read '" + path + "': " + std::strerror(errno));
    }
  }
  return hash.finish();
}

}  // namespace surgery
