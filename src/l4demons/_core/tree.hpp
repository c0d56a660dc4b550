// Search trees in flat arrays, the leaf batch they write to, and value backup
// (the C++ side of l4demons/search/tree.py).
//
// Nodes and edges live in vectors indexed by int, so a tree is a handful of
// allocations however large it grows, and starting the next search reuses them.
// Edge statistics live on the parent, from the parent's point of view; values
// are in [-1, 1] for the side to move at the node that holds them.
#pragma once

#include <cmath>
#include <stdexcept>
#include <vector>

#include "board.hpp"
#include "encode.hpp"
#include "rules.hpp"

namespace l4d {

constexpr int PLANE_FLOATS = NUM_PLANES * 64;

// One network call's input, written leaf by leaf: input planes and, per leaf, the
// flat positions (row * POLICY_SIZE + policy index) of its legal moves' logits.
struct BatchOut {
    float* planes = nullptr;  // [cap_rows, 20 * 64]
    int64_t* flat = nullptr;  // [cap_flats]
    int64_t rows = 0, flats = 0;
    int64_t cap_rows = 0, cap_flats = 0;

    int64_t rows_left() const { return cap_rows - rows; }
};

// The network's answer, read leaf by leaf in the order the leaves were written.
struct BatchIn {
    const float* logits = nullptr;  // each leaf's legal-move logits, concatenated
    const float* values = nullptr;  // one value (W - L) per leaf
    const float* logits_end = nullptr;
    const float* values_end = nullptr;

    const float* take_logits(int count) {
        if (logits + count > logits_end) throw std::length_error("fewer logits than the batch's leaves need");
        const float* p = logits;
        logits += count;
        return p;
    }
    double take_value() {
        if (values >= values_end) throw std::length_error("fewer values than the batch's leaves");
        return double(*values++);
    }
};

enum NodeState : uint8_t { PENDING = 0, EXPANDED = 1, TERMINAL = 2 };

struct Node {
    int32_t first = 0;  // first edge
    int32_t count = 0;  // edges (legal moves)
    int32_t total = 0;  // sum of the edges' visits
    uint8_t state = PENDING;
    double value = 0.0;  // the network's value here, or the terminal value
};

struct Step {
    int32_t node;
    int32_t edge;  // index into the edge arrays
};

struct PendingLeaf {
    int32_t node;
    int32_t path_begin;  // into the search's step pool
    int32_t path_len;    // 0 for the root
};

struct Tree {
    std::vector<Node> nodes;
    std::vector<Move> move;
    std::vector<uint16_t> pidx;
    std::vector<double> logit, prior, wsum;
    std::vector<int32_t> visits, child;
    bool keep_logits = false;  // Gumbel's interior selection needs them; PUCT only priors
    double policy_temp = 1.0;  // priors are softmax(logits / policy_temp); kept logits stay raw

    void clear() {
        nodes.clear();
        move.clear();
        pidx.clear();
        logit.clear();
        prior.clear();
        wsum.clear();
        visits.clear();
        child.clear();
    }

    int add_terminal(double v) {
        Node nd;
        nd.state = TERMINAL;
        nd.value = v;
        nd.first = int32_t(move.size());
        nodes.push_back(nd);
        return int(nodes.size()) - 1;
    }

    int add_pending(const Move* moves, int n, int turn) {
        Node nd;
        nd.first = int32_t(move.size());
        nd.count = n;
        for (int i = 0; i < n; ++i) {
            move.push_back(moves[i]);
            pidx.push_back(uint16_t(policy_index(moves[i], turn)));
        }
        const size_t size = move.size();
        if (keep_logits) logit.resize(size);
        prior.resize(size);
        wsum.resize(size, 0.0);
        visits.resize(size, 0);
        child.resize(size, -1);
        nodes.push_back(nd);
        return int(nodes.size()) - 1;
    }

    // Node.expand: logits (float32, the network's) become float64 priors by softmax.
    void expand(int node, const float* logits, double value) {
        Node& nd = nodes[node];
        double* p = prior.data() + nd.first;
        double hi = -INFINITY;
        for (int i = 0; i < nd.count; ++i) {
            p[i] = double(logits[i]);
            hi = p[i] > hi ? p[i] : hi;
        }
        if (keep_logits)
            for (int i = 0; i < nd.count; ++i) logit[nd.first + i] = p[i];
        const double inv_temp = 1.0 / policy_temp;
        double sum = 0.0;
        for (int i = 0; i < nd.count; ++i) {
            p[i] = std::exp((p[i] - hi) * inv_temp);
            sum += p[i];
        }
        for (int i = 0; i < nd.count; ++i) p[i] /= sum;
        nd.state = EXPANDED;
        nd.value = value;
    }

    // The network's answer for a pending leaf: its logits and value; returns the value.
    double expand_from(BatchIn& in, int node) {
        const double value = in.take_value();
        expand(node, in.take_logits(nodes[node].count), value);
        return value;
    }

    // tree.backup: a leaf's value (leaf's side to move) up the path. With ``virtual`` the
    // visits were counted on the way down as losses: undo the loss, add the real value.
    void backup(const Step* path, int len, double value, bool virtual_loss) {
        double v = value;
        for (int i = len - 1; i >= 0; --i) {
            v = -v;
            const int e = path[i].edge;
            if (virtual_loss) {
                wsum[e] += v + 1.0;
            } else {
                visits[e] += 1;
                nodes[path[i].node].total += 1;
                wsum[e] += v;
            }
        }
    }

    double q(int edge) const { return visits[edge] > 0 ? wsum[edge] / visits[edge] : 0.0; }
};

// Writes one leaf (its planes and its moves' flat policy positions) into the batch.
inline void write_leaf(BatchOut& out, const Record& rec, const Tree& tree, int node) {
    const Node& nd = tree.nodes[node];
    if (out.rows >= out.cap_rows || out.flats + nd.count > out.cap_flats)
        throw std::length_error("leaf batch buffer too small");
    write_planes(rec, out.planes + out.rows * PLANE_FLOATS);
    const int64_t base = out.rows * POLICY_SIZE;
    for (int i = 0; i < nd.count; ++i) out.flat[out.flats++] = base + tree.pidx[nd.first + i];
    ++out.rows;
}

inline void softmax(const double* x, int n, double* out) {
    double hi = -INFINITY;
    for (int i = 0; i < n; ++i) hi = x[i] > hi ? x[i] : hi;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
        out[i] = std::exp(x[i] - hi);
        sum += out[i];
    }
    for (int i = 0; i < n; ++i) out[i] /= sum;
}

}  // namespace l4d
