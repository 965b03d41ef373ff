// The fixed net the caffemodel target loads weights into, and make_seeds
// writes the seed caffemodels of: small enough that a seed is about a
// kilobyte, and holding each kind of param blob a deploy net has
// (convolution and inner-product weights and biases, BatchNorm's statistics
// and scale factor, Scale's factors and biases).
#ifndef SURGERY_FUZZ_TINY_NET_HPP_
#define SURGERY_FUZZ_TINY_NET_HPP_

namespace fuzz {

constexpr char kTinyNet[] = R"(name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 3 kernel_size: 3
                            weight_filler { type: "gaussian" std: 0.5 }
                            bias_filler { type: "constant" value: 0.25 } } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv"
        scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
        inner_product_param { num_output: 4
                              weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
)";

}  // namespace fuzz

#endif  // SURGERY_FUZZ_TINY_NET_HPP_
