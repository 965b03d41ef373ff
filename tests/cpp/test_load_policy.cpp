// The load policy (layer_policy.hpp) and the parameter checks
// (parameter_checks.hpp), both read from the layer table (layer_table.hpp):
// what a definition from anywhere may construct.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "caffe/layer_factory.hpp"
#include "caffe/net.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/base/name_text.hpp"
#include "surgery/definition/layer_policy.hpp"
#include "surgery/definition/layer_table.hpp"
#include "surgery/definition/parameter_checks.hpp"
#include "surgery/definition/validate.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/layers/library_layers.hpp"
#include "surgery/runtime/net.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

const LoadPolicy kTrusted{true};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const NetDefinitionError& e) {
    return e.what();
  }
  return "";
}

void validate_text(const std::string& text, const LoadPolicy& policy = {}) {
  validate_definition(parse_net_text(text, "test.prototxt"), "test.prototxt", policy);
}

// Sets the string field at a dotted path of `message`, creating the messages on the way.
void set_path(google::protobuf::Message* message, const std::string& path, const std::string& value) {
  const auto dot = path.find('.');
  const auto* field = message->GetDescriptor()->FindFieldByName(path.substr(0, dot));
  ASSERT_NE(field, nullptr) << path;
  if (dot == std::string::npos) {
    message->GetReflection()->SetString(message, field, value);
  } else {
    set_path(message->GetReflection()->MutableMessage(message, field), path.substr(dot + 1), value);
  }
}

TEST(LoadPolicy, EveryRegisteredTypeIsClassified) {
  register_library_layers();  // ours too
  const auto registered = caffe::LayerRegistry<float>::LayerTypeList();
  EXPECT_EQ(registered.size(), 77u + library_layer_types().size());
  for (const auto& type : registered) EXPECT_NE(find_layer_row(type), nullptr) << type;
}

TEST(LoadPolicy, EachFileFieldIsRefusedUnlessTrusted) {
  int fields = 0;
  for (const auto& row : layer_table()) {
    for (const auto& field : row.file_fields) {
      caffe::LayerParameter layer;
      layer.set_name("l");
      layer.set_type(row.type);
      EXPECT_EQ(message_of([&] { check_layer_policy(layer, "x", {}); }), "") << field.path;
      set_path(&layer, field.path, "/some/file");
      const auto message = message_of([&] { check_layer_policy(layer, "x", {}); });
      EXPECT_NE(message.find(field.path), std::string::npos) << message;
      EXPECT_NE(message.find("trust_io_layers"), std::string::npos) << message;
      EXPECT_EQ(message.find("/some/file"), std::string::npos) << message;
      EXPECT_EQ(message_of([&] { check_layer_policy(layer, "x", kTrusted); }), "");
      ++fields;
    }
  }
  EXPECT_EQ(fields, 7);
}

TEST(LoadPolicy, TypesOutsideTheAllowListAreRefused) {
  for (const auto& row : layer_table()) {
    caffe::LayerParameter layer;
    layer.set_name("l");
    layer.set_type(row.type);
    const auto plain = message_of([&] { check_layer_policy(layer, "x", {}); });
    const auto trusted = message_of([&] { check_layer_policy(layer, "x", kTrusted); });
    switch (row.access) {
      case LayerAccess::kComputes:
        EXPECT_EQ(plain, "") << row.type;
        break;
      case LayerAccess::kTouchesFiles:
        EXPECT_NE(plain.find("trust_io_layers"), std::string::npos) << plain;
        EXPECT_EQ(trusted, "") << row.type;
        break;
      default:  // a database, unchecked writes, code: no option constructs them
        EXPECT_NE(plain.find("refused"), std::string::npos) << plain;
        EXPECT_EQ(trusted, plain);
    }
  }
  caffe::LayerParameter unknown;
  unknown.set_type("Frobnicate");
  EXPECT_NE(message_of([&] { check_layer_policy(unknown, "x", kTrusted); }).find("unknown"),
            std::string::npos);
}

// The definitions users load most, fixtures of the repository, pass.
TEST(LoadPolicy, FixtureDeployNetsPass) {
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(fixtures())) {
    const auto name = entry.path().filename().string();
    if (entry.path().extension() != ".prototxt" || name.find("solver") != std::string::npos ||
        name.find("train") != std::string::npos) {
      continue;
    }
    caffe::NetParameter filtered;
    auto param = read_net_text(entry.path().string());
    param.mutable_state()->set_phase(caffe::TEST);
    caffe::Net<float>::FilterNet(param, &filtered);
    EXPECT_NO_THROW(validate_definition(filtered, entry.path().string())) << entry.path();
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no fixtures";
}

TEST(LoadPolicy, DetectionOutputLeavesTheVictimFolderAlone) {
  TempDir dir;
  const auto victim = std::filesystem::path(dir.file("victim.txt", "precious")).parent_path();
  const auto path = dir.file("det.prototxt", R"(
    layer { name: "loc" type: "Input" top: "loc" input_param { shape { dim: 1 dim: 8 } } }
    layer { name: "conf" type: "Input" top: "conf" input_param { shape { dim: 1 dim: 4 } } }
    layer { name: "prior" type: "Input" top: "prior" input_param { shape { dim: 1 dim: 2 dim: 8 } } }
    layer { name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior"
            top: "out" detection_output_param { num_classes: 2
            save_output_param { output_directory: ")" + victim.string() + R"(" } } })");
  const auto message = message_of([&] { Net net(path); });
  EXPECT_NE(message.find("'det' (DetectionOutput)"), std::string::npos) << message;
  std::ifstream in(victim / "victim.txt");
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

// Each of these crashed (SIGFPE, SIGSEGV) or read uninitialised sizes in Caffe.
TEST(ParameterChecks, CrashingParametersRaise) {
  const std::string input =
      R"(layer { name: "data" type: "Input" top: "data"
                 input_param { shape { dim: 1 dim: 4 dim: 8 dim: 8 } } })";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(type: "Convolution" bottom: "data" convolution_param { num_output: 1 kernel_size: 3
          stride_h: 0 stride_w: 1 })", "stride"},
      {R"(type: "Convolution" bottom: "data" convolution_param { num_output: 4 kernel_size: 3
          group: 0 })", "group"},
      {R"(type: "Convolution" bottom: "data" convolution_param { num_output: 1 kernel_size: 3
          dilation: 0 })", "dilation"},
      {R"(type: "Convolution" bottom: "data" convolution_param { num_output: 0 kernel_size: 3 })",
       "num_output"},
      {R"(type: "Convolution" bottom: "data" convolution_param { num_output: 1 kernel_size: 3
          kernel_size: 3 kernel_size: 3 })", "spatial axes"},
      {R"(type: "Convolution" convolution_param { num_output: 1 kernel_size: 3 })", "bottoms"},
      {R"(type: "Pooling" bottom: "data" pooling_param { kernel_size: 2 stride: 0 })", "stride"},
      {R"(type: "Pooling" bottom: "data" pooling_param { kernel_size: 2 pad: 2 })", "pad"},
      {R"(type: "LRN" bottom: "data" lrn_param { local_size: 4 })", "odd"},
      {R"(type: "PixelShuffle" bottom: "data")", "upscale_factor"},
      {R"(type: "PixelShuffle" pixelshuffle_param { upscale_factor: 2 })", "bottoms"},
      {R"(type: "Upsample")", "bottoms"},
      {R"(type: "Upsample" bottom: "data" upsample_param { scale: 0 })", "scale"},
      {R"(type: "Upsample" bottom: "data" upsample_param { scale: 2 dims_num: 3 })", "axes"},
      {R"(type: "BilinearInterpolate" bottom: "data")", "exactly one"},
      {R"(type: "Softmax" bottom: "data" softmax_param { axis: 4 })", "axis"},
      {R"(type: "InnerProduct" bottom: "data" inner_product_param { num_output: 2 axis: -5 })",
       "axis"},
      {R"(type: "Eltwise" bottom: "data")", "bottoms"},
      {R"(type: "Dropout" bottom: "data" dropout_param { dropout_ratio: 1 })", "dropout_ratio"},
      {R"(type: "Reshape" bottom: "data" reshape_param { shape { dim: -1 dim: -1 } })", "-1"},
      // axis + num_axes overflowed Caffe's int check: an 8 GB shape copy (fuzzing).
      {R"(type: "Scale" bottom: "data" scale_param { num_axes: 2147483647 })", "num_axes"},
      {R"(type: "Scale" bottom: "data" scale_param { axis: 2 num_axes: 3 })", "num_axes"},
      {R"(type: "Bias" bottom: "data" bias_param { axis: -1 num_axes: 2 })", "num_axes"},
      {R"(type: "Reshape" bottom: "data" reshape_param { shape { dim: 0 } axis: 1
          num_axes: 2147483647 })", "num_axes"},
      {R"(type: "Accuracy" bottom: "data" bottom: "data" top: "per_class")", "second top"},
      {R"(type: "Convolution" bottom: "data" convolution_param { num_output: 1 kernel_size: 3 }
          blobs { shape { dim: 1 } data: 1 })", "weights"},
      {R"(type: "DummyData" dummy_data_param { shape { dim: 0 dim: 3 } })", "positive"},
      {R"(type: "Proposal" bottom: "data" bottom: "data" bottom: "data")", "ratio"},
  };
  for (const auto& [layer, needle] : cases) {
    const auto text = input + R"(layer { name: "bad" top: "out" )" + layer + " }";
    const auto message = message_of([&] { validate_text(text); });
    EXPECT_NE(message.find("'bad'"), std::string::npos) << layer << "\n" << message;
    EXPECT_NE(message.find(needle), std::string::npos) << layer << "\n" << message;
  }
}

// Parameter and DummyData declare their tops' axes as Input does, so a
// layer that needs a number of axes is checked after them too (the fuzzer
// reached Upsample's reshape with the 0-axis top of a shapeless Parameter).
TEST(ParameterChecks, AxesDeclaredByParameterAndDummyDataAreChecked) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(layer { name: "p" type: "Parameter" top: "p" }
          layer { name: "bad" type: "Upsample" bottom: "p" top: "u" upsample_param { scale: 2 } })",
       "the bottom has 0 axes"},
      {R"(layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 4 dim: 2 } } }
          layer { name: "bad" type: "PixelShuffle" bottom: "p" top: "s"
                  pixelshuffle_param { upscale_factor: 2 } })",
       "the bottom has 2 axes"},
      {R"(layer { name: "d" type: "DummyData" top: "d" dummy_data_param { shape { dim: 2 dim: 3 } } }
          layer { name: "bad" type: "Upsample" bottom: "d" top: "u" upsample_param { scale: 2 } })",
       "the bottom has 2 axes"},
  };
  for (const auto& [text, needle] : cases) {
    const auto message = message_of([&] { validate_text(text); });
    EXPECT_NE(message.find("'bad'"), std::string::npos) << text << "\n" << message;
    EXPECT_NE(message.find(needle), std::string::npos) << text << "\n" << message;
  }
  // Legacy DummyData fields declare 4 axes.
  EXPECT_NO_THROW(validate_text(R"(
    layer { name: "d" type: "DummyData" top: "d"
            dummy_data_param { num: 1 channels: 4 height: 2 width: 2 } }
    layer { name: "u" type: "Upsample" bottom: "d" top: "u" upsample_param { scale: 2 } })"));
}

TEST(ParameterChecks, GoodParametersPass) {
  EXPECT_NO_THROW(validate_text(kTinyNet));
  EXPECT_NO_THROW(validate_text(R"(
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 8 dim: 8 } } }
    layer { name: "c" type: "Convolution" bottom: "data" top: "c"
            convolution_param { num_output: 4 kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1
                                pad_h: 1 pad_w: 0 group: 2 dilation: 1 } }
    layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { kernel_size: 3 pad: 1 stride: 2 } }
    layer { name: "s" type: "PixelShuffle" bottom: "p" top: "s" pixelshuffle_param { upscale_factor: 2 } }
    layer { name: "u" type: "Upsample" bottom: "s" top: "u" upsample_param { scale: 2 } }
    layer { name: "f" type: "Flatten" bottom: "u" top: "f" }
    layer { name: "sm" type: "Softmax" bottom: "f" top: "sm" })"));
  // Scale, Bias and Reshape over every run of axes the bottom has.
  EXPECT_NO_THROW(validate_text(R"(
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 8 dim: 8 } } }
    layer { name: "s1" type: "Scale" bottom: "data" top: "s1" scale_param { axis: 1 num_axes: 3 } }
    layer { name: "s2" type: "Scale" bottom: "s1" top: "s2" scale_param { axis: -3 num_axes: -1 } }
    layer { name: "b" type: "Bias" bottom: "s2" top: "b" bias_param { axis: -1 num_axes: 1 } }
    layer { name: "r1" type: "Reshape" bottom: "b" top: "r1"
            reshape_param { shape { dim: 64 } axis: 2 num_axes: 2 } }
    layer { name: "r2" type: "Reshape" bottom: "r1" top: "r2"
            reshape_param { shape { dim: 1 } axis: -1 num_axes: 0 } })"));
}

TEST(NameChecks, NamesMustBeCleanUtf8) {
  EXPECT_TRUE(is_clean_name("conv1/3x3_reduce"));
  EXPECT_TRUE(is_clean_name("\xC3\xA9t\xC3\xA9"));        // été
  EXPECT_TRUE(is_clean_name("\xF0\x9F\x98\x80"));         // U+1F600
  EXPECT_FALSE(is_clean_name("caf\xFF"));
  EXPECT_FALSE(is_clean_name("\xC0\xAF"));                // overlong '/'
  EXPECT_FALSE(is_clean_name("\xED\xA0\x80"));            // a surrogate
  EXPECT_FALSE(is_clean_name("\xF4\x90\x80\x80"));        // above U+10FFFF
  EXPECT_FALSE(is_clean_name("\xE2\x82"));                // cut short
  EXPECT_FALSE(is_clean_name(std::string("a\0b", 3)));
  EXPECT_EQ(quoted_name(std::string("a\0b\xFF\xC3\xA9", 6)), "a\\x00b\\xFF\xC3\xA9");

  const auto message = message_of([&] {
    validate_text(R"(layer { name: "in" type: "Input" top: "d\377" input_param { shape { dim: 1 } } })");
  });
  EXPECT_NE(message.find("top 'd\\xFF'"), std::string::npos) << message;
  EXPECT_TRUE(is_clean_name(message));
}

}  // namespace
}  // namespace surgery::test
