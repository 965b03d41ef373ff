// The layers of a definition that one phase builds, as caffe::Net selects
// them (include/exclude rules); shared by nets and the trainer.
#ifndef SURGERY_PHASE_FILTER_HPP_
#define SURGERY_PHASE_FILTER_HPP_

#include "caffe/proto/caffe.pb.h"

namespace surgery {

// A failed CHECK in Caffe's filter comes out as CaffeError.
caffe::NetParameter filter_by_phase(const caffe::NetParameter& definition, caffe::Phase phase);
// The same for a whole state: phase, level and stages (NetStateRule's min_level,
// max_level, stage and not_stage select by these).
caffe::NetParameter filter_by_state(const caffe::NetParameter& definition,
                                    const caffe::NetState& state);

}  // namespace surgery

#endif  // SURGERY_PHASE_FILTER_HPP_
