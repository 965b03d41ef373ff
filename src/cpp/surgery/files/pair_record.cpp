#include "surgery/files/pair_record.hpp"

#include <sstream>

#include "surgery/base/errors.hpp"

namespace surgery {
namespace {

const char kPrefix[] = "# caffe-surgery pair: weights ";

// The name as the record spells it: one token, no quotes or control bytes.
std::string record_name(const std::string& path) {
  const auto slash = path.rfind('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  for (char& c : name) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '\\' || c == 0x7f) c = '_';
  }
  return name;
}

}  // namespace

std::string pair_record_line(const std::string& caffemodel_path, const FileDigest& digest) {
  std::ostringstream out;
  out << kPrefix << record_name(caffemodel_path) << " bytes " << digest.bytes << " sha256 "
      << digest.sha256 << "\n";
  return out.str();
}

std::optional<PairRecord> find_pair_record(const std::string& prototxt_text,
                                           const std::string& source) {
  if (prototxt_text.compare(0, sizeof kPrefix - 1, kPrefix) != 0) return std::nullopt;
  std::istringstream line(prototxt_text.substr(0, prototxt_text.find('\n')));
  std::string hash, weights, bytes_word, sha_word;
  PairRecord record;
  line >> hash >> hash >> hash >> weights >> record.weights_name >> bytes_word >>
      record.digest.bytes >> sha_word >> record.digest.sha256;
  if (!line || bytes_word != "bytes" || sha_word != "sha256" ||
      record.digest.sha256.size() != 64) {
    throw ParseError("the first line of '" + source + "' is a damaged caffe-surgery pair "
                     "record; delete that line to load the prototxt without it");
  }
  return record;
}

bool record_applies(const PairRecord& record, const std::string& weights_path) {
  return record.weights_name == record_name(weights_path);
}

std::string pair_mismatch(const PairRecord& record, const std::string& prototxt_path,
                          const std::string& weights_path, const FileDigest& actual) {
  if (actual.bytes == record.digest.bytes && actual.sha256 == record.digest.sha256) return "";
  std::ostringstream out;
  out << "'" << prototxt_path << "' was saved together with a caffemodel '"
      << record.weights_name << "' of " << record.digest.bytes << " bytes (sha256 "
      << record.digest.sha256.substr(0, 12) << "...), but '" << weights_path << "' has "
      << actual.bytes << " bytes (sha256 " << actual.sha256.substr(0, 12)
      << "...): the pair is mixed (a save interrupted between the two files, or one file "
         "replaced). Save the pair again, or, if these weights are meant for this "
         "definition, delete the prototxt's first line";
  return out.str();
}

void check_pair(const PairRecord& record, const std::string& prototxt_path,
                const std::string& weights_path, const FileDigest& actual) {
  const std::string mismatch = pair_mismatch(record, prototxt_path, weights_path, actual);
  if (!mismatch.empty()) throw ParseError(mismatch);
}

}  // namespace surgery
