#include "surgery/kernels/fastest_convolution.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <string>

#include "surgery/base/errors.hpp"

namespace surgery {
namespace {

// Timed runs of each engine on a layer, taken in turns; the fastest counts.
constexpr int kTimedRuns = 3;

}  // namespace

bool FastestLayers::run(Engine engine, const caffe::Net<float>& net, int index,
                        uint64_t weights_generation, bool relu) {
  switch (engine) {
    case Engine::kWinograd:
      return winograd_.forward(net, index, weights_generation, relu);
    case Engine::kOneDnn:
      return onednn_.forward(net, index, weights_generation);
    case Engine::kCaffe:
      break;
  }
  const auto& layer = net.layers()[index];
  layer->Forward(net.bottom_vecs()[index], net.top_vecs()[index]);
  return true;
}

FastestLayers::Engine FastestLayers::choose(const caffe::Net<float>& net, int index,
                                            uint64_t weights_generation) {
  struct Candidate {
    Engine engine;
    double ms;
  };
  std::vector<Candidate> candidates;
  for (Engine engine : {Engine::kCaffe, Engine::kWinograd, Engine::kOneDnn}) {
    // The first run makes the engine's copies of the weights: not timed. An
    // engine whose copies the memory limit refuses is left out.
    try {
      if (run(engine, net, index, weights_generation)) {
        candidates.push_back({engine, std::numeric_limits<double>::infinity()});
      }
    } catch (const MemoryLimitError&) {
      if (engine == Engine::kCaffe) throw;
      winograd_.forget(index);
      onednn_.forget(index);
    }
  }
  // In turns, so that a burst of other work falls on every engine alike.
  for (int round = 0; round < kTimedRuns; ++round) {
    for (Candidate& candidate : candidates) {
      const auto start = std::chrono::steady_clock::now();
      run(candidate.engine, net, index, weights_generation);
      candidate.ms = std::min(candidate.ms, std::chrono::duration<double, std::milli>(
                                                std::chrono::steady_clock::now() - start)
                                                .count());
    }
  }
  const Engine best =
      std::min_element(candidates.begin(), candidates.end(),
                       [](const Candidate& a, const Candidate& b) { return a.ms < b.ms; })
          ->engine;
  if (best != Engine::kWinograd) winograd_.forget(index);
  if (best != Engine::kOneDnn) onednn_.forget(index);
  return best;
}

bool FastestLayers::forward(const caffe::Net<float>& net, int index,
                            uint64_t weights_generation, bool relu) {
  const auto& layer = net.layers()[index];
  if (std::string(layer->type()) != "Convolution" || caffe::Caffe::mode() != caffe::Caffe::CPU) {
    return false;
  }
  choices_.resize(net.layers().size());
  Choice& choice = choices_[index];
  const std::vector<int>& shape = net.bottom_vecs()[index][0]->shape();
  if (choice.shape != shape) {
    choice.engine = choose(net, index, weights_generation);
    choice.shape = shape;
  }
  // Run again by the chosen engine, so that every forward's output is its.
  if (choice.engine == Engine::kCaffe) return false;
  if (run(choice.engine, net, index, weights_generation, relu)) return true;
  // It declined these shapes after all (a layer replaced by surgery): measure anew.
  choice.shape.clear();
  return false;
}

}  // namespace surgery
