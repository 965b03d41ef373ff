#include "surgery/files/keyed_tag.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace surgery {

TagKey TagKey::random() {
  TagKey key;
  if (RAND_bytes(key.bytes.data(), static_cast<int>(key.bytes.size())) != 1) {
    throw std::runtime_error("OpenSSL cannot draw a random key");
  }
  return key;
}

struct KeyedTag::State {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "POLY1305", nullptr);
  EVP_MAC_CTX* context = mac ? EVP_MAC_CTX_new(mac) : nullptr;
  ~State() {
    EVP_MAC_CTX_free(context);
    EVP_MAC_free(mac);
  }
};

KeyedTag::KeyedTag(const TagKey& key) : state_(std::make_unique<State>()) {
  if (!state_->context ||
      EVP_MAC_init(state_->context, key.bytes.data(), key.bytes.size(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL cannot start a Poly1305 tag");
  }
}

KeyedTag::~KeyedTag() = default;

void KeyedTag::update(const void* data, size_t size) {
  if (EVP_MAC_update(state_->context, static_cast<const unsigned char*>(data), size) != 1) {
    throw std::runtime_error("OpenSSL failed to update a Poly1305 tag");
  }
  bytes_ += size;
}

ReadTag KeyedTag::finish() {
  ReadTag out;
  size_t length = 0;
  if (EVP_MAC_final(state_->context, out.mac.data(), &length, out.mac.size()) != 1 ||
      length != out.mac.size()) {
    throw std::runtime_error("OpenSSL failed to finish a Poly1305 tag");
  }
  out.bytes = bytes_;
  return out;
}

}  // namespace surgery
