// One row per layer type: all that the load policy (layer_policy.hpp) and
// the parameter checks (parameter_checks.hpp) know of it.
//
// A row says whether the type computes from its bottoms and parameters
// alone or touches files, databases, unchecked memory or code (and why);
// which of its fields name files; and, for the computing types only, its
// bottom and top counts, how its tops' axes follow, and the rule its
// parameters follow (parameter_rules.hpp). Types the table does not know
// are refused, so a computing type cannot lack its rules, nor a refused one
// slip through the checks.
#ifndef SURGERY_LAYER_TABLE_HPP_
#define SURGERY_LAYER_TABLE_HPP_

#include <optional>
#include <string>
#include <vector>

namespace surgery {

enum class LayerAccess {
  kComputes,     // reads only its bottoms and parameters
  kTouchesFiles, // opens, reads, writes or deletes files named in its definition
  kUnavailable,  // needs what this libcaffe lacks (a database, OpenCV) or
                 // starts a thread whose failure cannot be reported
  kUnchecked,    // writes memory at positions read from its inputs, unchecked
  kRunsCode,     // runs code named in the definition
};

// A field that makes an otherwise computing type touch files when it is in
// use (a non-empty string, a true bool, any other value set).
struct FileField {
  std::string path;    // dotted, from LayerParameter: "infogain_loss_param.source"
  std::string effect;  // what Caffe does with it
};

// A blob's number of axes where the definition says it, else kUnknownAxes.
constexpr int kUnknownAxes = -1;

// How many bottoms or tops a type takes; max kAnyCount: no limit.
constexpr int kAnyCount = -1;
struct Counts {
  int min, max;
};

// How many axes a layer's tops have, as far as the definition says:
// unknown, those of its bottom, or declared by its own shape fields (Input,
// Parameter, DummyData).
enum class TopAxes { kUnknown, kSame, kDeclared };

class ParameterChecker;
using ParameterRule = void (*)(ParameterChecker&);

// What the parameter checks read of a computing type. Counts come from the
// layer's header where it declares them, else from what its source indexes;
// losses may leave their top implicit (Caffe adds it).
struct ParameterRules {
  Counts bottoms, tops;
  TopAxes top_axes;
  ParameterRule check;  // nullptr: the counts are all there is to check
};

struct LayerRow {
  std::string type;
  LayerAccess access;
  std::string reason;  // what the type does; empty for kComputes
  std::vector<FileField> file_fields;
  std::optional<ParameterRules> parameters;  // exactly for kComputes
};

// Every type the table knows, in table order.
const std::vector<LayerRow>& layer_table();

// The row of `type`, or nullptr for a type the table does not know.
const LayerRow* find_layer_row(const std::string& type);

}  // namespace surgery

#endif  // SURGERY_LAYER_TABLE_HPP_
