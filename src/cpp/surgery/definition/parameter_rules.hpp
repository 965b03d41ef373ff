// The rules the parameters of the computing layer types follow, one function
// a rule; layer_table.cpp names each type's. Caffe CHECKs some parameters,
// but divides by others first (stride_h: 0, group: 0, PixelShuffle's
// factor), reads uninitialised sizes (BilinearInterpolate with neither a
// size nor a factor) or casts unsigned values above 2^31 to negative ints.
#ifndef SURGERY_PARAMETER_RULES_HPP_
#define SURGERY_PARAMETER_RULES_HPP_

#include <cstdint>
#include <string>
#include <vector>

#include "caffe/proto/caffe.pb.h"
#include "surgery/definition/layer_table.hpp"

namespace surgery {

// Collects the first problem of one layer; the rule functions below state
// each requirement as a condition and the message that names the parameter.
class ParameterChecker {
 public:
  ParameterChecker(const caffe::LayerParameter& layer, const std::vector<int>& bottom_axes)
      : layer(layer), bottom_axes(bottom_axes) {}

  const caffe::LayerParameter& layer;
  const std::vector<int>& bottom_axes;

  void require(bool ok, const std::string& what);
  // An unsigned parameter Caffe stores in an int and divides by or loops to.
  void positive(uint64_t value, const std::string& field);
  void at_most_int(uint64_t value, const std::string& field);
  void finite_positive(float value, const std::string& field);
  // The number of axes of bottom `i`, or kUnknownAxes.
  int axes(int i = 0) const;
  // An axis index Caffe canonicalises against the bottom's axes (-R..R-1);
  // `extra` widens the range for fields that may name one past the end.
  void axis(int64_t value, const std::string& field, int extra = 0);
  // A run of `num_axes` bottom axes from `axis` (-1: to the end). Caffe
  // checks axis + num_axes against the bottom in int, so a huge num_axes
  // overflows past its check and copies a shape from far beyond the
  // bottom's (an 8 GB vector, found by fuzzing Scale). Without a known
  // bottom, at most Caffe's kMaxBlobAxes.
  // `extra` is as for axis(): Reshape counts a negative axis from one past
  // the end.
  void axis_span(int64_t axis, int64_t num_axes, const std::string& field, int extra = 0);
  void exact_axes(int wanted, const std::string& why);
  const std::string& problem() const { return problem_; }

 private:
  std::string problem_;
};

// Convolution, Deconvolution and Im2col.
void check_convolution(ParameterChecker& c);
void check_pooling(ParameterChecker& c);
void check_dilated_pooling(ParameterChecker& c);
void check_lrn(ParameterChecker& c);
void check_pixel_shuffle(ParameterChecker& c);
void check_upsample(ParameterChecker& c);
void check_bilinear_interpolate(ParameterChecker& c);
void check_resize(ParameterChecker& c);
void check_inner_product(ParameterChecker& c);
void check_embed(ParameterChecker& c);
// RNN and LSTM.
void check_recurrent(ParameterChecker& c);
void check_scale(ParameterChecker& c);
void check_bias(ParameterChecker& c);
void check_eltwise(ParameterChecker& c);
void check_pad(ParameterChecker& c);
void check_concat(ParameterChecker& c);
void check_slice(ParameterChecker& c);
void check_crop(ParameterChecker& c);
void check_flatten(ParameterChecker& c);
void check_reshape(ParameterChecker& c);
void check_unsqueeze(ParameterChecker& c);
void check_permute(ParameterChecker& c);
void check_tile(ParameterChecker& c);
void check_reduction(ParameterChecker& c);
// Softmax and SoftmaxWithLoss.
void check_softmax(ParameterChecker& c);
void check_argmax(ParameterChecker& c);
void check_accuracy(ParameterChecker& c);
void check_dropout(ParameterChecker& c);
void check_spp(ParameterChecker& c);
void check_psroi_pooling(ParameterChecker& c);
void check_proposal(ParameterChecker& c);
void check_detection_output(ParameterChecker& c);
void check_detection_evaluate(ParameterChecker& c);
void check_dummy_data(ParameterChecker& c);
void check_parameter(ParameterChecker& c);
void check_memory_data(ParameterChecker& c);

}  // namespace surgery

#endif  // SURGERY_PARAMETER_RULES_HPP_
