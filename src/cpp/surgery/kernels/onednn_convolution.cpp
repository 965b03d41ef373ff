#include "surgery/kernels/onednn_convolution.hpp"

#include <algorithm>
#include <climits>
#include <new>
#include <string>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "caffe/util/onednn_gemm.hpp"  // our recipe's patch 0020: oneDNN's threads and signals
#include "caffe/util/parallel.hpp"     // our recipe's patch 0009: libcaffe's own thread pool
#include "surgery/base/errors.hpp"

namespace surgery {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

// From this many weights on, a one-group convolution is a fully connected
// layer for oneDNN's inner product: its packed weights stream past the
// gathered windows once, where the direct convolution's blocking (made for
// feature maps, not for 6x6 maps of 4096 channels) takes 2x longer.
constexpr int64_t kFullyConnectedWeights = int64_t{1} << 22;

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

int64_t output_size(int64_t input, const Window& w) {
  return (input + 2 * w.pad - (w.dilation * (w.kernel - 1) + 1)) / w.stride + 1;
}

// `bytes` of blob memory (the memory limit applies to it, as to any blob).
float* blob_memory(caffe::Blob<float>& blob, size_t bytes) {
  const size_t floats = std::max<size_t>(1, (bytes + sizeof(float) - 1) / sizeof(float));
  if (floats > static_cast<size_t>(INT_MAX)) throw std::bad_alloc();
  blob.Reshape(std::vector<int>{static_cast<int>(floats)});
  return blob.mutable_cpu_data();
}

memory wrap(const memory::desc& desc, const float* data) {
  return memory(desc, cpu_engine(), const_cast<float*>(data));
}

}  // namespace

struct OneDnnConvolution::Plan {
  memory::desc user_weights, weights, bias;
  // The direct convolution: Caffe's NCHW layouts and the primitive's.
  memory::desc user_src, user_dst, src, dst;
  // The inner product: input windows x (channel, y, x) in, windows x
  // output channels out.
  int64_t windows = 0, window_size = 0;
  dnnl::primitive primitive;
  size_t scratch_bytes = 0;

  using Args = std::unordered_map<int, memory>;
  void direct(const caffe::Blob<float>& bottom, caffe::Blob<float>* top, Shared& shared,
              dnnl::stream& stream, Args& args) const;
  void fully_connected(const Window& h, const Window& w, const caffe::Blob<float>& bottom,
                       caffe::Blob<float>* top, Shared& shared, dnnl::stream& stream,
                       Args& args) const;
};

void OneDnnConvolution::Plan::direct(const caffe::Blob<float>& bottom, caffe::Blob<float>* top,
                                     Shared& shared, dnnl::stream& stream, Args& args) const {
  memory caffe_in = wrap(user_src, bottom.cpu_data());
  memory caffe_out(user_dst, cpu_engine(), top->mutable_cpu_data());
  memory in = caffe_in, out = caffe_out;
  if (src != user_src) {
    in = memory(src, cpu_engine(), blob_memory(shared.src, src.get_size()));
    dnnl::reorder(caffe_in, in).execute(stream, caffe_in, in);
  }
  if (dst != user_dst) out = memory(dst, cpu_engine(), blob_memory(shared.dst, dst.get_size()));
  args.emplace(DNNL_ARG_SRC, in);
  args.emplace(DNNL_ARG_DST, out);
  primitive.execute(stream, args);
  if (dst != user_dst) dnnl::reorder(out, caffe_out).execute(stream, out, caffe_out);
}

void OneDnnConvolution::Plan::fully_connected(const Window& h, const Window& w,
                                              const caffe::Blob<float>& bottom,
                                              caffe::Blob<float>* top, Shared& shared,
                                              dnnl::stream& stream, Args& args) const {
  const int64_t channels = bottom.shape(1), height = bottom.shape(2), width = bottom.shape(3);
  const int64_t out_channels = top->shape(1), out_width = top->shape(3);
  const int64_t pixels = top->shape(2) * out_width;
  // The windows, one a row: what Caffe's im2col gathers, transposed.
  const float* in = bottom.cpu_data();
  float* rows = blob_memory(shared.src, windows * window_size * sizeof(float));
  caffe::parallel_for(windows, 4, [&](long first, long last) {
    for (long r = first; r < last; ++r) {
      const int64_t image = r / pixels, oy = r % pixels / out_width, ox = r % out_width;
      float* row = rows + r * window_size;
      for (int64_t c = 0; c < channels; ++c) {
        const float* plane = in + (image * channels + c) * height * width;
        for (int64_t ky = 0; ky < h.kernel; ++ky) {
          const int64_t y = oy * h.stride - h.pad + ky * h.dilation;
          for (int64_t kx = 0; kx < w.kernel; ++kx) {
            const int64_t x = ox * w.stride - w.pad + kx * w.dilation;
            *row++ = y >= 0 && y < height && x >= 0 && x < width ? plane[y * width + x] : 0.f;
          }
        }
      }
    }
  });
  float* products = blob_memory(shared.dst, windows * out_channels * sizeof(float));
  args.emplace(DNNL_ARG_SRC, wrap(memory::desc({windows, window_size}, kF32, Tag::ab), rows));
  args.emplace(DNNL_ARG_DST, memory(memory::desc({windows, out_channels}, kF32, Tag::ab),
                                    cpu_engine(), products));
  primitive.execute(stream, args);
  stream.wait();
  // And back: channel o of image i is column o of the image's rows.
  float* output = top->mutable_cpu_data();
  caffe::parallel_for(out_channels, 16, [&](long first, long last) {
    for (int64_t image = 0; image < windows / pixels; ++image) {
      for (long o = first; o < last; ++o) {
        float* plane = output + (image * out_channels + o) * pixels;
        const float* column = products + image * pixels * out_channels + o;
        for (int64_t i = 0; i < pixels; ++i) plane[i] = column[i * out_channels];
      }
    }
  });
}

OneDnnConvolution::~OneDnnConvolution() = default;

std::unique_ptr<OneDnnConvolution> OneDnnConvolution::for_layer(
    caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
    const caffe::Blob<float>& top) {
  if (!is_plain_convolution(layer, bottom, top)) return nullptr;
  const caffe::ConvolutionParameter& p = layer.layer_param().convolution_param();
  std::unique_ptr<OneDnnConvolution> conv(new OneDnnConvolution);
  conv->h_ = conv_window(p, 0);
  conv->w_ = conv_window(p, 1);
  conv->group_ = static_cast<int>(p.group());
  conv->bias_ = p.bias_term();
  const caffe::Blob<float>& weights = *layer.blobs()[0];
  conv->fully_connected_ = conv->group_ == 1 && weights.count() >= kFullyConnectedWeights;
  return conv->fits(layer, bottom, top) ? std::move(conv) : nullptr;
}

bool OneDnnConvolution::fits(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
                             const caffe::Blob<float>& top) const {
  const caffe::Blob<float>& weights = *layer.blobs()[0];
  return bottom.num_axes() == 4 && top.num_axes() == 4 && bottom.shape(0) == top.shape(0) &&
         bottom.shape(1) == int64_t{weights.shape(1)} * group_ &&
         top.shape(1) == weights.shape(0) && top.shape(2) == output_size(bottom.shape(2), h_) &&
         top.shape(3) == output_size(bottom.shape(3), w_);
}

bool OneDnnConvolution::plan(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
                             const caffe::Blob<float>& top) {
  const memory::dim n = bottom.shape(0), c = bottom.shape(1), out = top.shape(1);
  auto plan = std::make_unique<Plan>();
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (bias_) plan->bias = memory::desc({out}, kF32, Tag::x);
  try {
    if (fully_connected_) {
      plan->windows = n * top.shape(2) * top.shape(3);
      plan->window_size = layer.blobs()[0]->count() / out;
      const memory::dims weights{out, plan->window_size};
      plan->user_weights = memory::desc(weights, kF32, Tag::ab);
      const dnnl::inner_product_forward::primitive_desc pd(
          dnnl::inner_product_forward::desc(
              dnnl::prop_kind::forward_inference,
              memory::desc({plan->windows, plan->window_size}, kF32, Tag::ab),
              memory::desc(weights, kF32, Tag::any), plan->bias,
              memory::desc({plan->windows, out}, kF32, Tag::ab)),
          attr, cpu_engine());
      plan->weights = pd.weights_desc();
      plan->scratch_bytes = pd.scratchpad_desc().get_size();
      plan->primitive = dnnl::inner_product_forward(pd);
    } else {
      const memory::dim g = group_;
      const memory::dims weights =
          g == 1 ? memory::dims{out, c, h_.kernel, w_.kernel}
                 : memory::dims{g, out / g, c / g, h_.kernel, w_.kernel};
      const memory::dims src{n, c, bottom.shape(2), bottom.shape(3)};
      const memory::dims dst{n, out, top.shape(2), top.shape(3)};
      plan->user_weights = memory::desc(weights, kF32, g == 1 ? Tag::oihw : Tag::goihw);
      plan->user_src = memory::desc(src, kF32, Tag::nchw);
      plan->user_dst = memory::desc(dst, kF32, Tag::nchw);
      const dnnl::convolution_forward::primitive_desc pd(
          dnnl::convolution_forward::desc(
              dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
              memory::desc(src, kF32, Tag::any), memory::desc(weights, kF32, Tag::any),
              plan->bias, memory::desc(dst, kF32, Tag::any), {h_.stride, w_.stride},
              {h_.dilation - 1, w_.dilation - 1}, {h_.pad, w_.pad}, {h_.pad, w_.pad}),
          attr, cpu_engine());
      plan->src = pd.src_desc();
      plan->dst = pd.dst_desc();
      plan->weights = pd.weights_desc();
      plan->scratch_bytes = pd.scratchpad_desc().get_size();
      plan->primitive = dnnl::convolution_forward(pd);
    }
  } catch (const dnnl::error&) {
    return false;  // no kernel for these shapes here: Caffe computes the layer
  }
  plan_ = std::move(plan);
  return true;
}

void OneDnnConvolution::pack_weights(caffe::Layer<float>& layer) {
  memory packed(plan_->weights, cpu_engine(), blob_memory(packed_, plan_->weights.get_size()));
  memory weights = wrap(plan_->user_weights, layer.blobs()[0]->cpu_data());
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(weights, packed).execute(stream, weights, packed);
  stream.wait();
}

bool OneDnnConvolution::forward(caffe::Layer<float>& layer, const caffe::Blob<float>& bottom,
                                caffe::Blob<float>* top, uint64_t weights_generation,
                                Shared& shared) {
  // oneDNN's threads and signals (caffe/util/onednn_gemm.hpp). A primitive
  // keeps the thread count it was made for: a new count (or a fork) needs a
  // new one, as a new input shape does.
  const caffe::OnednnSection section;
  const int threads = section.threads();
  if (bottom.shape() != planned_for_ || threads != planned_threads_) {
    planned_for_ = bottom.shape();
    planned_threads_ = threads;
    packed_made_ = false;
    unplannable_ = !plan(layer, bottom, *top);
  }
  if (unplannable_) return false;
  // Only the layer's blob holds the weights' memory when no view of it is
  // alive; a view (a numpy array over params) may be written at any time.
  if (!packed_made_ || weights_generation != packed_generation_ ||
      layer.blobs()[0]->data().use_count() > 1) {
    packed_made_ = false;
    const int64_t mib = static_cast<int64_t>(plan_->weights.get_size() / 1048576.0 + 0.5);
    guard_caffe("layer '" + layer.layer_param().name() + "': convolution 'onednn' keeps its "
                "weights in oneDNN's layout (" + std::to_string(mib) +
                " MiB; 'caffe' keeps no copy)", [&] { pack_weights(layer); });
    packed_made_ = true;
    packed_generation_ = weights_generation;
  }
  std::unordered_map<int, memory> args{
      {DNNL_ARG_WEIGHTS, memory(plan_->weights, cpu_engine(), packed_.mutable_cpu_data())},
      {DNNL_ARG_SCRATCHPAD, memory(memory::desc({static_cast<memory::dim>(plan_->scratch_bytes)},
                                                memory::data_type::u8, Tag::x),
                                   cpu_engine(), blob_memory(shared.scratch,
                                                             plan_->scratch_bytes))}};
  if (bias_) args.emplace(DNNL_ARG_BIAS, wrap(plan_->bias, layer.blobs()[1]->cpu_data()));
  dnnl::stream stream(cpu_engine());
  if (fully_connected_) {
    plan_->fully_connected(h_, w_, bottom, top, shared, stream, args);
  } else {
    plan_->direct(bottom, top, shared, stream, args);
  }
  stream.wait();
  return true;
}

}  // namespace surgery
