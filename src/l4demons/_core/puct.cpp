// PUCT; see puct.hpp and l4demons/search/puct.py.
#include "puct.hpp"

#include <algorithm>
#include <cmath>

namespace l4d {

PuctSearch::PuctSearch(const Board& root, std::vector<uint64_t> keys, const PuctParams& params,
                       std::vector<Move> allowed)
    : root_(root), keys_(std::move(keys)), params_(params), allowed_(std::move(allowed)) {
    tree_.policy_temp = params_.policy_temp;
}

int PuctSearch::collect(BatchOut& out, int want) {
    if (tree_.nodes.empty()) {
        Move moves[MAX_MOVES];
        int n = root_.legal_moves(moves);
        if (!allowed_.empty()) {  // searchmoves / root_moves: keep the allowed ones, in legal-move order
            int kept = 0;
            for (int i = 0; i < n; ++i)
                if (std::find(allowed_.begin(), allowed_.end(), moves[i]) != allowed_.end()) moves[kept++] = moves[i];
            if (kept > 0) n = kept;
        }
        const int node = tree_.add_pending(moves, n, root_.turn);
        write_leaf(out, encode_record(root_, repeated_once(root_, keys_)), tree_, node);
        pending_.push_back({node, 0, 0});
        return 1;
    }
    int leaves = 0;
    for (int tries = 0; tries < 2 * want; ++tries) {  // terminal hits use tries but no network call
        if (leaves >= want) break;
        bool collided = false;
        if (descend(out, collided)) ++leaves;
        if (collided) break;
    }
    return leaves;
}

bool PuctSearch::reuse(const PuctSearch& old, const std::vector<Move>& path) {
    const Tree& src = old.tree_;
    if (!tree_.nodes.empty() || !allowed_.empty() || !old.pending_.empty() || !old.started()) return false;
    int node = 0;
    for (Move m : path) {
        const Node& nd = src.nodes[node];
        if (nd.state != EXPANDED) return false;
        int next = -1;
        for (int i = 0; i < nd.count && next < 0; ++i)
            if (src.move[nd.first + i] == m) next = src.child[nd.first + i];
        if (next < 0) return false;
        node = next;
    }
    const Node& top = src.nodes[node];
    if (top.state != EXPANDED || top.count < 2) return false;
    for (int i = 0; i < top.count; ++i)
        if (gives_mate(root_, src.move[top.first + i])) return false;
    // Copy the subtree breadth first: each node's edges stay one block, children are renumbered.
    std::vector<int> from{node};  // source node of each copied node, by new index
    for (size_t at = 0; at < from.size(); ++at) {
        const Node& sn = src.nodes[from[at]];
        Node dn = sn;
        dn.first = int32_t(tree_.move.size());
        tree_.nodes.push_back(dn);
        for (int i = 0; i < sn.count; ++i) {
            const int e = sn.first + i;
            tree_.move.push_back(src.move[e]);
            tree_.pidx.push_back(src.pidx[e]);
            tree_.prior.push_back(src.prior[e]);
            tree_.wsum.push_back(src.wsum[e]);
            tree_.visits.push_back(src.visits[e]);
            int32_t child = -1;
            if (src.child[e] >= 0) {
                child = int32_t(from.size());
                from.push_back(src.child[e]);
            }
            tree_.child.push_back(child);
        }
    }
    return true;
}

int PuctSearch::select(int node) const {
    const Node& nd = tree_.nodes[node];
    const double total = double(nd.total);
    const double scale = total > 0 ? std::sqrt(total) : 1.0;
    const double fpu = nd.value - params_.fpu_reduction;
    int best = 0;
    double best_score = -INFINITY;
    for (int i = 0; i < nd.count; ++i) {
        const int e = nd.first + i;
        const double v = double(tree_.visits[e]);
        const double q = tree_.visits[e] > 0 ? tree_.wsum[e] / v : fpu;
        const double u = params_.c_puct * tree_.prior[e] * scale / (1.0 + v);
        if (q + u > best_score) {
            best_score = q + u;
            best = i;
        }
    }
    return best;
}

bool PuctSearch::descend(BatchOut& out, bool& collided) {
    Board b = root_;
    const size_t history = keys_.size();
    const int32_t begin = int32_t(steps_.size());
    int node = 0, child;
    bool is_leaf = false;
    while (true) {
        const int edge = tree_.nodes[node].first + select(node);
        tree_.visits[edge] += 1;  // virtual loss, made real or undone below
        tree_.nodes[node].total += 1;
        tree_.wsum[edge] -= 1.0;
        steps_.push_back({node, edge});
        b.play(tree_.move[edge]);
        keys_.push_back(b.key);
        child = tree_.child[edge];
        if (child < 0) {
            Move moves[MAX_MOVES];
            const int n = b.legal_moves(moves);
            double tv;
            if (search_end_value(b, moves, n, keys_, tv)) {
                child = tree_.add_terminal(tv);
            } else {
                child = tree_.add_pending(moves, n, b.turn);
                write_leaf(out, encode_record(b, repeated_once(b, keys_)), tree_, child);
                is_leaf = true;
            }
            tree_.child[edge] = child;
            break;
        }
        if (tree_.nodes[child].state != EXPANDED) break;
        node = child;
    }
    const int32_t len = int32_t(steps_.size()) - begin;
    max_depth_ = std::max(max_depth_, int(len));
    keys_.resize(history);
    if (tree_.nodes[child].state == TERMINAL) {
        tree_.backup(steps_.data() + begin, len, tree_.nodes[child].value, true);
    } else if (!is_leaf) {  // collided with a leaf still waiting for the network
        collided = true;
        for (int i = begin; i < begin + len; ++i) {
            tree_.visits[steps_[i].edge] -= 1;
            tree_.nodes[steps_[i].node].total -= 1;
            tree_.wsum[steps_[i].edge] += 1.0;
        }
    }
    if (is_leaf) {
        pending_.push_back({child, begin, len});
    } else {
        steps_.resize(begin);
    }
    return is_leaf;
}

void PuctSearch::deliver(BatchIn& in) {
    for (const PendingLeaf& leaf : pending_) {
        const double value = tree_.expand_from(in, leaf.node);
        ++nodes_;
        if (leaf.path_len > 0)
            tree_.backup(steps_.data() + leaf.path_begin, leaf.path_len, value, true);
        else if (tree_.nodes[leaf.node].count == 1)
            done_ = true;  // a forced move needs no search
        else
            done_ = visit_mates();
    }
    pending_.clear();
    steps_.clear();
}

bool PuctSearch::visit_mates() {
    const int first = tree_.nodes[0].first, count = tree_.nodes[0].count;
    bool found = false;
    for (int i = 0; i < count; ++i) {
        const int e = first + i;
        if (!gives_mate(root_, tree_.move[e])) continue;
        const int child = tree_.add_terminal(-1.0);  // may reallocate nodes: index, not the reference, below
        tree_.child[e] = child;
        tree_.visits[e] = 1;
        tree_.wsum[e] = 1.0;
        tree_.nodes[0].total += 1;
        found = true;
    }
    return found;
}

int PuctSearch::action() const {
    const Node& root = tree_.nodes[0];
    int best = 0;
    if (root.total == 0) {
        for (int i = 1; i < root.count; ++i)
            if (tree_.prior[root.first + i] > tree_.prior[root.first + best]) best = i;
        return best;
    }
    for (int i = 1; i < root.count; ++i) {  // numpy.lexsort((prior, q, visits))[-1]
        const int e = root.first + i, b = root.first + best;
        if (tree_.visits[e] != tree_.visits[b]) {
            if (tree_.visits[e] > tree_.visits[b]) best = i;
            continue;
        }
        const double qe = tree_.q(e), qb = tree_.q(b);
        if (qe != qb) {
            if (qe > qb) best = i;
            continue;
        }
        if (tree_.prior[e] >= tree_.prior[b]) best = i;
    }
    return best;
}

void PuctSearch::policy(std::vector<double>& out) const {
    const Node& root = tree_.nodes[0];
    out.resize(root.count);
    for (int i = 0; i < root.count; ++i)
        out[i] = root.total == 0 ? tree_.prior[root.first + i]
                                 : double(tree_.visits[root.first + i]) / double(root.total);
}

double PuctSearch::value() const {
    const Node& root = tree_.nodes[0];
    return root.total == 0 ? root.value : tree_.q(root.first + action());
}

std::vector<Move> PuctSearch::principal_variation(int max_len) const {
    std::vector<Move> pv;
    int node = 0;
    while (node >= 0 && tree_.nodes[node].state == EXPANDED && tree_.nodes[node].total > 0 && int(pv.size()) < max_len) {
        const Node& nd = tree_.nodes[node];
        int best = 0;
        for (int i = 1; i < nd.count; ++i)
            if (tree_.visits[nd.first + i] > tree_.visits[nd.first + best]) best = i;
        pv.push_back(tree_.move[nd.first + best]);
        node = tree_.child[nd.first + best];
    }
    return pv;
}

}  // namespace l4d
