// Ties a saved prototxt to the caffemodel saved with it. Net::save writes
// both to temporaries, then renames the prototxt, then the caffemodel; the
// prototxt's first line records the caffemodel's name, size and SHA-256. A
// kill between the two renames leaves the new prototxt beside the old
// caffemodel, and loading that pair then fails with ParseError naming both
// files, instead of silently mixing a new definition with old weights.
#ifndef SURGERY_PAIR_RECORD_HPP_
#define SURGERY_PAIR_RECORD_HPP_

#include <optional>
#include <string>

#include "surgery/files/file_digest.hpp"

namespace surgery {

struct PairRecord {
  std::string weights_name;  // the caffemodel's file name, without folder
  FileDigest digest;
};

// The comment line (with its newline) that starts a prototxt saved together
// with `caffemodel_path`, whose bytes have `digest`.
std::string pair_record_line(const std::string& caffemodel_path, const FileDigest& digest);

// The record on the first line of `prototxt_text`, if it has one; ParseError
// naming `source` if that line is damaged.
std::optional<PairRecord> find_pair_record(const std::string& prototxt_text,
                                           const std::string& source);

// Whether loading `weights_path` with a prototxt carrying `record` must match
// it: only a caffemodel of the recorded name is checked, so a converted
// prototxt still loads other weights (the original caffemodel, fine-tuned
// copies) under other names.
bool record_applies(const PairRecord& record, const std::string& weights_path);

// What differs, naming both files, or "" if `actual` matches the record.
std::string pair_mismatch(const PairRecord& record, const std::string& prototxt_path,
                          const std::string& weights_path, const FileDigest& actual);

// ParseError with pair_mismatch's text unless `actual` matches.
void check_pair(const PairRecord& record, const std::string& prototxt_path,
                const std::string& weights_path, const FileDigest& actual);

}  // namespace surgery

#endif  // SURGERY_PAIR_RECORD_HPP_
