// Structure-aware mutation of prototxts for libFuzzer, linked into every
// target whose input is a net definition. Byte flips mostly break the text
// syntax, so they rarely reach the layers; this mutator parses the input as
// a caffe.NetParameter and edits it through protobuf reflection: layer
// types drawn from Caffe's layer registry, fields and enum values from
// caffe.proto's descriptors, numbers from edge values (0, -1, 2^31-1, NaN,
// ...) and small ones, blob names from the net itself. Input that does not
// parse (and one mutation in eight) falls back to libFuzzer's byte mutation.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include "caffe/layer_factory.hpp"
#include "caffe/proto/caffe.pb.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using Rng = std::minstd_rand;

class Silent : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, int, const std::string&) override {}
};

bool parse(const uint8_t* data, size_t size, caffe::NetParameter* net) {
  Silent silent;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&silent);
  return parser.ParseFromString(std::string(reinterpret_cast<const char*>(data), size), net);
}

size_t emit(const caffe::NetParameter& net, uint8_t* data, size_t max_size) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(net, &text);
  if (text.size() > max_size) return 0;
  std::memcpy(data, text.data(), text.size());
  return text.size();
}

size_t below(Rng& rng, size_t n) { return n ? rng() % n : 0; }

template <typename T>
T pick(Rng& rng, const std::vector<T>& values) { return values[below(rng, values.size())]; }

const std::vector<std::string>& layer_types() {
  static const std::vector<std::string> types = caffe::LayerRegistry<float>::LayerTypeList();
  return types;
}

int64_t integer(Rng& rng, int64_t lo, int64_t hi) {
  // Half edge values, half small ones: small values keep a net valid enough
  // to reach the layers' own arithmetic.
  static const std::vector<int64_t> edges = {
      0, 1, -1, 2, 3, 7, 255, 256, 65535, 65536, (int64_t{1} << 30),
      std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min(),
      int64_t{std::numeric_limits<int32_t>::max()} + 1,
      std::numeric_limits<uint32_t>::max(), std::numeric_limits<int64_t>::max(),
      std::numeric_limits<int64_t>::min()};
  int64_t value = rng() % 2 ? pick(rng, edges) : static_cast<int64_t>(below(rng, 12));
  return std::max(lo, std::min(hi, value));
}

double real(Rng& rng) {
  static const std::vector<double> edges = {
      0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-45, 1e10, 3.4e38, -3.4e38,
      std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
      -std::numeric_limits<double>::infinity()};
  return rng() % 2 ? pick(rng, edges) : static_cast<double>(below(rng, 9)) / 4.0;
}

// Names of the blobs (tops) and layers of the net: what bottom/top/name
// fields are drawn from, so edits keep (or break on purpose) the wiring.
std::vector<std::string> names_of(const caffe::NetParameter& net) {
  std::vector<std::string> names(net.input().begin(), net.input().end());
  for (const auto& layer : net.layer()) {
    names.push_back(layer.name());
    names.insert(names.end(), layer.top().begin(), layer.top().end());
  }
  names.push_back("data");
  return names;
}

std::string string_value(Rng& rng, const FieldDescriptor* field,
                         const std::vector<std::string>& names) {
  if (field->name() == "type" && field->containing_type()->name() == "LayerParameter") {
    return pick(rng, layer_types());
  }
  switch (below(rng, 4)) {
    case 0: return "";
    case 1: return "x" + std::to_string(below(rng, 8));
    default: return pick(rng, names);
  }
}

// Sets `field` of `message` (element `index` if repeated; -1 appends).
void set_scalar(Rng& rng, Message* message, const FieldDescriptor* field, int index,
                const std::vector<std::string>& names) {
  const Reflection* r = message->GetReflection();
  const bool add = field->is_repeated() && index < 0;
  switch (field->cpp_type()) {
#define SURGERY_FUZZ_SET(CPPTYPE, Name, value)                        \
  case FieldDescriptor::CPPTYPE: {                                    \
    auto v = (value);                                                 \
    if (!field->is_repeated()) r->Set##Name(message, field, v);      \
    else if (add) r->Add##Name(message, field, v);                   \
    else r->SetRepeated##Name(message, field, index, v);             \
    break;                                                            \
  }
    SURGERY_FUZZ_SET(CPPTYPE_INT32, Int32, static_cast<int32_t>(integer(
        rng, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max())))
    SURGERY_FUZZ_SET(CPPTYPE_INT64, Int64, integer(
        rng, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()))
    SURGERY_FUZZ_SET(CPPTYPE_UINT32, UInt32, static_cast<uint32_t>(integer(
        rng, 0, std::numeric_limits<uint32_t>::max())))
    SURGERY_FUZZ_SET(CPPTYPE_UINT64, UInt64, static_cast<uint64_t>(integer(
        rng, 0, std::numeric_limits<int64_t>::max())))
    SURGERY_FUZZ_SET(CPPTYPE_FLOAT, Float, static_cast<float>(real(rng)))
    SURGERY_FUZZ_SET(CPPTYPE_DOUBLE, Double, real(rng))
    SURGERY_FUZZ_SET(CPPTYPE_BOOL, Bool, rng() % 2 == 0)
    SURGERY_FUZZ_SET(CPPTYPE_ENUM, Enum, field->enum_type()->value(
        static_cast<int>(below(rng, field->enum_type()->value_count()))))
    SURGERY_FUZZ_SET(CPPTYPE_STRING, String, string_value(rng, field, names))
#undef SURGERY_FUZZ_SET
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
}

// One edit somewhere under `message`: a random field (set or not) of its
// type; sub-messages are entered (created if absent) up to a few levels down.
void mutate_field(Rng& rng, Message* message, const std::vector<std::string>& names) {
  for (int depth = 0; depth < 4; ++depth) {
    const auto* type = message->GetDescriptor();
    if (type->field_count() == 0) return;
    const FieldDescriptor* field = type->field(static_cast<int>(below(rng, type->field_count())));
    const Reflection* r = message->GetReflection();
    const int count = field->is_repeated() ? r->FieldSize(*message, field) : 0;
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!field->is_repeated()) {
        message = r->MutableMessage(message, field);
      } else if (count == 0 || rng() % 4 == 0) {
        message = r->AddMessage(message, field);
      } else if (rng() % 8 == 0) {
        r->RemoveLast(message, field);
        return;
      } else {
        message = r->MutableRepeatedMessage(message, field, static_cast<int>(below(rng, count)));
      }
      continue;
    }
    if (!field->is_repeated()) {
      if (r->HasField(*message, field) && rng() % 6 == 0) r->ClearField(message, field);
      else set_scalar(rng, message, field, 0, names);
    } else if (count > 0 && rng() % 6 == 0) {
      r->RemoveLast(message, field);
    } else {
      const bool append = count == 0 || rng() % 3 == 0;
      set_scalar(rng, message, field, append ? -1 : static_cast<int>(below(rng, count)), names);
    }
    return;
  }
}

// Edits of the net's structure that field edits cannot make.
void mutate_layers(Rng& rng, caffe::NetParameter* net, const std::vector<std::string>& names) {
  auto* layers = net->mutable_layer();
  const int n = layers->size();
  switch (below(rng, 5)) {
    case 0:  // retype a layer, keeping its wiring and parameters
      if (n) layers->Mutable(static_cast<int>(below(rng, n)))->set_type(pick(rng, layer_types()));
      break;
    case 1:  // drop a layer
      if (n) layers->DeleteSubrange(static_cast<int>(below(rng, n)), 1);
      break;
    case 2:  // duplicate one, as it is (duplicate names on purpose) or renamed
      if (n) {
        caffe::LayerParameter copy = layers->Get(static_cast<int>(below(rng, n)));
        if (rng() % 2) copy.set_name(copy.name() + "_dup");
        *net->add_layer() = copy;
      }
      break;
    case 3:  // swap two layers
      if (n > 1) layers->SwapElements(static_cast<int>(below(rng, n)), static_cast<int>(below(rng, n)));
      break;
    default: {  // a new layer of any registered type, fed by an existing blob
      auto* layer = net->add_layer();
      layer->set_type(pick(rng, layer_types()));
      layer->set_name("fz" + std::to_string(n));
      layer->add_bottom(pick(rng, names));
      layer->add_top("fz" + std::to_string(n));
      if (n && rng() % 2) layers->SwapElements(n, static_cast<int>(below(rng, n)));
    }
  }
}

void mutate(Rng& rng, caffe::NetParameter* net) {
  const std::vector<std::string> names = names_of(*net);
  const int edits = 1 + static_cast<int>(below(rng, 3));
  for (int i = 0; i < edits; ++i) {
    const int n = net->layer_size();
    if (rng() % 4 == 0 || n == 0) {
      mutate_layers(rng, net, names);
    } else if (rng() % 8 == 0) {
      mutate_field(rng, net, names);  // net level: inputs, shapes, state
    } else {
      mutate_field(rng, net->mutable_layer(static_cast<int>(below(rng, n))), names);
    }
  }
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  Rng rng(seed);
  caffe::NetParameter net;
  if (rng() % 8 != 0 && parse(data, size, &net)) {
    mutate(rng, &net);
    if (const size_t written = emit(net, data, max_size)) return written;
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

// Crossover: a layer of the other input inserted into this one.
extern "C" size_t LLVMFuzzerCustomCrossOver(const uint8_t* data1, size_t size1,
                                            const uint8_t* data2, size_t size2, uint8_t* out,
                                            size_t max_out_size, unsigned int seed) {
  Rng rng(seed);
  caffe::NetParameter net, other;
  if (!parse(data1, size1, &net) || !parse(data2, size2, &other) || other.layer_size() == 0) {
    return 0;  // libFuzzer then keeps the input as it is
  }
  *net.add_layer() = other.layer(static_cast<int>(below(rng, other.layer_size())));
  const int last = net.layer_size() - 1;
  net.mutable_layer()->SwapElements(last, static_cast<int>(below(rng, last + 1)));
  return emit(net, out, max_out_size);
}
