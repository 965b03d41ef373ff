// Solvers read through our loader (solver_file.hpp), and nets built for a
// whole NetState (level, stages), as pycaffe's constructors ask.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "caffe/net.hpp"
#include "caffe/sgd_solvers.hpp"
#include "surgery/base/errors.hpp"
#include "surgery/files/proto_io.hpp"
#include "surgery/runtime/net.hpp"
#include "surgery/train/solver_file.hpp"
#include "surgery/train/solver_snapshot.hpp"
#include "test_support.hpp"

namespace surgery::test {
namespace {

// DummyData -> InnerProduct -> SoftmaxWithLoss, and `extra` (one more layer).
std::string train_net(const std::string& extra = "") {
  return R"(
name: "train"
layer { name: "data" type: "DummyData" top: "data" top: "label"
        dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 }
                           data_filler { type: "gaussian" } data_filler { type: "constant" } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 4 weight_filler { type: "gaussian" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
)" + extra;
}

std::string solver_text(const std::string& net) {
  return "net: '" + net + "' test_iter: 2 test_interval: 5 base_lr: 0.1 lr_policy: 'fixed' "
         "max_iter: 10 snapshot_after_train: false";
}

std::string refusal(const std::string& solver, const LoadPolicy& policy = {}) {
  try {
    read_solver_file(solver, policy);
  } catch (const NetDefinitionError& e) {
    return e.what();
  }
  return "";
}

TEST(SolverFile, NetsAreReadInlineAndTheSolverTrains) {
  TempDir dir;
  const auto solver = dir.file("solver.prototxt", solver_text(dir.file("net.prototxt", train_net())));
  const caffe::SolverParameter param = read_solver_file(solver, {});
  EXPECT_FALSE(param.has_net());
  ASSERT_TRUE(param.has_net_param());
  EXPECT_EQ(param.net_param().layer_size(), 3);

  auto made = create_solver(param, "Adam", solver);
  EXPECT_STREQ(made->type(), "Adam");
  ASSERT_EQ(made->test_nets().size(), 1u);
  made->Step(3);
  EXPECT_EQ(made->iter(), 3);
}

TEST(SolverFile, ALayerThePolicyRefusesIsRefusedInTheTrainNet) {
  TempDir dir;
  const auto net = dir.file("net.prototxt", train_net(R"(
layer { name: "py" type: "Python" bottom: "ip" top: "py"
        python_param { module: "os" layer: "system" } })"));
  const auto solver = dir.file("solver.prototxt", solver_text(net));
  const std::string message = refusal(solver);
  EXPECT_NE(message.find(solver), std::string::npos) << message;
  EXPECT_NE(message.find("'py'"), std::string::npos) << message;
  EXPECT_NE(message.find("runs arbitrary code"), std::string::npos) << message;
}

TEST(SolverFile, TestNetsAreCheckedInTheirOwnState) {
  // The file-writing layer exists only in the TEST phase: a check of the
  // train net alone would let Caffe construct it for the test net.
  TempDir dir;
  const auto net = dir.file("net.prototxt", train_net(R"(
layer { name: "dump" type: "HDF5Output" bottom: "ip" bottom: "label"
        hdf5_output_param { file_name: "/tmp/overwritten.h5" } include { phase: TEST } })"));
  const auto solver = dir.file("solver.prototxt", solver_text(net));
  const std::string message = refusal(solver);
  EXPECT_NE(message.find("test net 0"), std::string::npos) << message;
  EXPECT_NE(message.find("'dump'"), std::string::npos) << message;
  EXPECT_EQ(refusal(solver, LoadPolicy{true}), "");
}

TEST(SolverFile, AMissingNetFileIsAFileError) {
  TempDir dir;
  const auto solver = dir.file("solver.prototxt", solver_text(dir.file("absent.prototxt")));
  EXPECT_THROW(read_solver_file(solver, {}), FileError);
}

TEST(SolverFile, ABrokenSolverNamesItsLine) {
  TempDir dir;
  const auto solver = dir.file("solver.prototxt", "base_lr: 0.1\nmax_iter: ten\n");
  try {
    read_solver_file(solver, {});
    FAIL() << "parsed";
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

TEST(NetState, LevelAndStagesSelectTheLayersCaffeSelects) {
  const std::string text = R"(
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }
layer { name: "always" type: "InnerProduct" bottom: "data" top: "always"
        inner_product_param { num_output: 1 } }
layer { name: "level1" type: "InnerProduct" bottom: "data" top: "level1"
        include { min_level: 1 } inner_product_param { num_output: 1 } }
layer { name: "stageA" type: "InnerProduct" bottom: "data" top: "stageA"
        include { stage: "A" } inner_product_param { num_output: 1 } }
layer { name: "notA" type: "InnerProduct" bottom: "data" top: "notA"
        exclude { stage: "A" } inner_product_param { num_output: 1 } }
)";
  for (const auto& [level, stages] : std::vector<std::pair<int, std::vector<std::string>>>{
           {0, {}}, {1, {}}, {0, {"A"}}, {1, {"A", "B"}}}) {
    caffe::NetState state;
    state.set_phase(caffe::TEST);
    state.set_level(level);
    for (const auto& stage : stages) state.add_stage(stage);
    Net ours(parse_net_text(text, "state.prototxt"), "state.prototxt", state, {});
    // The oracle: Caffe's own Net, given the same state.
    caffe::NetParameter param = parse_net_text(text, "state.prototxt");
    *param.mutable_state() = state;
    caffe::Net<float> theirs(param);
    EXPECT_EQ(ours.caffe_net().layer_names(), theirs.layer_names()) << level;
    EXPECT_EQ(ours.state().level(), level);
  }
}

// The values of every param blob of the solver's net, and of its history.
std::vector<std::vector<float>> values_of(caffe::Solver<float>& solver) {
  std::vector<std::vector<float>> out;
  for (const auto& blob : solver.net()->learnable_params()) {
    out.emplace_back(blob->cpu_data(), blob->cpu_data() + blob->count());
  }
  for (const auto& blob : static_cast<caffe::SGDSolver<float>&>(solver).history()) {
    out.emplace_back(blob->cpu_data(), blob->cpu_data() + blob->count());
  }
  return out;
}

struct Snapshot {
  TempDir dir;
  std::string solver, state;
  caffe::SolverParameter param;
};

// A solver trained 3 steps with momentum (non-zero history) and snapshotted
// by Caffe itself.
void snapshot_after_three_steps(Snapshot* s, const std::string& net_extra = "") {
  s->solver = s->dir.file("solver.prototxt",
                          solver_text(s->dir.file("net.prototxt", train_net(net_extra))) +
                              " momentum: 0.9 snapshot_prefix: '" + s->dir.file("snap") + "'");
  s->param = read_solver_file(s->solver, {});
  auto trained = create_solver(s->param, "SGD", s->solver);
  trained->Step(3);
  trained->Snapshot();
  s->state = s->dir.file("snap_iter_3.solverstate");
}

TEST(SolverFile, RestoreGivesWhatCaffesOwnRestoreGives) {
  Snapshot s;
  snapshot_after_three_steps(&s);
  auto ours = create_solver(s.param, "SGD", s.solver);
  const auto fresh = values_of(*ours);
  restore_solver(*ours, s.state);
  // The oracle: Caffe's own reader, on the same files.
  auto caffes = create_solver(s.param, "SGD", s.solver);
  caffes->Restore(s.state.c_str());
  EXPECT_EQ(ours->iter(), 3);
  EXPECT_EQ(values_of(*ours), values_of(*caffes));
  EXPECT_NE(values_of(*ours), fresh);
}

TEST(SolverFile, AStateOfAnotherNetIsRefusedAndChangesNothing) {
  Snapshot s;
  snapshot_after_three_steps(&s);
  // The same layer names, but ip has 5 outputs: its history does not fit.
  const auto other = s.dir.file("other.prototxt", [] {
    std::string text = train_net();
    text.replace(text.find("num_output: 4"), 13, "num_output: 5");
    return text;
  }());
  const auto other_solver = s.dir.file("other_solver.prototxt", solver_text(other));
  auto solver = create_solver(read_solver_file(other_solver, {}), "SGD", other_solver);
  const auto before = values_of(*solver);
  EXPECT_THROW(restore_solver(*solver, s.state), ShapeError);
  EXPECT_EQ(solver->iter(), 0);
  EXPECT_EQ(values_of(*solver), before);
}

TEST(SolverFile, ATruncatedStateIsAParseError) {
  Snapshot s;
  snapshot_after_three_steps(&s);
  std::filesystem::resize_file(s.state, std::filesystem::file_size(s.state) / 2);
  auto solver = create_solver(s.param, "SGD", s.solver);
  EXPECT_THROW(restore_solver(*solver, s.state), ParseError);
  EXPECT_EQ(solver->iter(), 0);
}

}  // namespace
}  // namespace surgery::test
