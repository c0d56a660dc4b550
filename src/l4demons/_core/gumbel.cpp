// Gumbel AlphaZero; see gumbel.hpp and l4demons/search/gumbel.py.
#include "gumbel.hpp"

#include <algorithm>
#include <cmath>

namespace l4d {

std::vector<std::pair<int, int>> halving_schedule(int m, int n) {
    std::vector<std::pair<int, int>> rounds;
    if (n <= 0) return rounds;
    if (m <= 1) {
        for (int level = 0; level < n; ++level) rounds.emplace_back(level, 1);
        return rounds;
    }
    int log2m = 0;
    while ((1 << log2m) < m) ++log2m;
    int level = 0, considered = m, total = 0;
    while (total < n) {
        const int extra = std::max(1, n / (log2m * considered));
        for (int i = 0; i < extra; ++i) {
            const int take = std::min(considered, n - total);
            if (take <= 0) break;
            rounds.emplace_back(level, take);
            total += take;
            ++level;
        }
        considered = std::max(2, considered / 2);
    }
    return rounds;
}

void GumbelSearch::start(const Board& root, std::vector<uint64_t>* keys, int simulations, const GumbelParams& params,
                         SplitMix64* noise) {
    tree_.clear();
    tree_.keep_logits = true;
    root_ = root;
    keys_ = keys;
    params_ = params;
    noise_ = noise;
    simulations_ = simulations;
    nodes_ = 0;
    root_started_ = false;
    mate_at_once_ = false;
    done_ = false;
    gumbel_.clear();
    considered_.clear();
    rounds_.clear();
    next_round_ = 0;
    steps_.clear();
    pending_.clear();
}

int GumbelSearch::collect(BatchOut& out) {
    if (!root_started_) {
        root_started_ = true;
        Move moves[MAX_MOVES];
        const int n = root_.legal_moves(moves);
        const int node = tree_.add_pending(moves, n, root_.turn);
        root_record_ = encode_record(root_, repeated_once(root_, *keys_));
        write_leaf(out, root_record_, tree_, node);
        pending_.push_back({node, 0, 0});
        return 1;
    }
    int leaves = 0;
    while (leaves == 0 && next_round_ < rounds_.size()) {
        const auto [level, count] = rounds_[next_round_++];
        completed_sigma(0, sigma_);
        const Node& root = tree_.nodes[0];
        scratch_.resize(root.count);
        for (int a = 0; a < root.count; ++a) scratch_[a] = gumbel_[a] + tree_.logit[root.first + a] + sigma_[a];
        pool_.clear();
        for (int a : considered_)
            if (tree_.visits[root.first + a] == level) pool_.push_back(a);
        std::stable_sort(pool_.begin(), pool_.end(), [&](int x, int y) { return scratch_[x] > scratch_[y]; });
        if (int(pool_.size()) > count) pool_.resize(count);
        for (int a : pool_)
            if (simulate(a, out)) ++leaves;
    }
    if (leaves == 0 && next_round_ >= rounds_.size()) done_ = true;
    return leaves;
}

int GumbelSearch::make_leaf(const Board& b, BatchOut& out, bool& is_leaf) {
    Move moves[MAX_MOVES];
    const int n = b.legal_moves(moves);
    double tv;
    if (search_end_value(b, moves, n, *keys_, tv)) {
        is_leaf = false;
        return tree_.add_terminal(tv);
    }
    const int node = tree_.add_pending(moves, n, b.turn);
    write_leaf(out, encode_record(b, repeated_once(b, *keys_)), tree_, node);
    is_leaf = true;
    return node;
}

bool GumbelSearch::simulate(int action, BatchOut& out) {
    Board b = root_;
    const size_t history = keys_->size();
    const int32_t begin = int32_t(steps_.size());
    int node = 0;
    int edge = tree_.nodes[0].first + action;
    steps_.push_back({node, edge});
    b.play(tree_.move[edge]);
    keys_->push_back(b.key);
    int child = tree_.child[edge];
    while (child >= 0 && tree_.nodes[child].state == EXPANDED) {
        node = child;
        edge = tree_.nodes[node].first + select_interior(node);
        steps_.push_back({node, edge});
        b.play(tree_.move[edge]);
        keys_->push_back(b.key);
        child = tree_.child[edge];
    }
    bool is_leaf = false;
    if (child < 0) {
        child = make_leaf(b, out, is_leaf);
        tree_.child[edge] = child;
    }
    keys_->resize(history);
    const int32_t len = int32_t(steps_.size()) - begin;
    if (tree_.nodes[child].state == TERMINAL) tree_.backup(steps_.data() + begin, len, tree_.nodes[child].value, false);
    // A pending child (another leaf of this round) cannot occur: a round starts from distinct root actions.
    if (is_leaf) {
        pending_.push_back({child, begin, len});
    } else {
        steps_.resize(begin);
    }
    return is_leaf;
}

void GumbelSearch::deliver(BatchIn& in) {
    for (const PendingLeaf& leaf : pending_) {
        const double value = tree_.expand_from(in, leaf.node);
        ++nodes_;
        if (leaf.path_len > 0) {
            tree_.backup(steps_.data() + leaf.path_begin, leaf.path_len, value, false);
            continue;
        }
        // The root: draw the Gumbels and plan the rounds.
        const Node& root = tree_.nodes[0];
        const int n = root.count;
        gumbel_.resize(n);
        for (int a = 0; a < n; ++a) gumbel_[a] = noise_->gumbel() * params_.gumbel_scale;
        considered_.clear();  // a mate at once: consider only the mating moves (in legal-move order)
        for (int a = 0; a < n; ++a)
            if (gives_mate(root_, tree_.move[root.first + a])) considered_.push_back(a);
        mate_at_once_ = !considered_.empty();
        if (!mate_at_once_) {
            scratch_.resize(n);
            considered_.resize(n);
            for (int a = 0; a < n; ++a) {
                scratch_[a] = -(gumbel_[a] + tree_.logit[root.first + a]);
                considered_[a] = a;
            }
            std::stable_sort(considered_.begin(), considered_.end(),
                             [&](int x, int y) { return scratch_[x] < scratch_[y]; });
            considered_.resize(std::min(params_.max_considered, n));
        }
        if (n > 1) rounds_ = halving_schedule(int(considered_.size()), simulations_ - 1);
    }
    pending_.clear();
    steps_.clear();
}

double GumbelSearch::mixed_value(int node) {
    const Node& nd = tree_.nodes[node];
    if (nd.total == 0) return nd.value;
    double sum_pq = 0.0, sum_p = 0.0;
    for (int i = 0; i < nd.count; ++i) {
        const int e = nd.first + i;
        if (tree_.visits[e] <= 0) continue;
        const double p = std::max(tree_.prior[e], 1e-30);
        sum_pq += p * (tree_.wsum[e] / tree_.visits[e]);
        sum_p += p;
    }
    return (nd.value + double(nd.total) * (sum_pq / sum_p)) / (double(nd.total) + 1.0);
}

void GumbelSearch::completed_sigma(int node, std::vector<double>& sigma) {
    const Node& nd = tree_.nodes[node];
    sigma.resize(nd.count);
    const double mixed = mixed_value(node);
    double lo = INFINITY, hi = -INFINITY;
    int max_visits = 0;
    for (int i = 0; i < nd.count; ++i) {
        const int e = nd.first + i;
        const double c = tree_.visits[e] > 0 ? tree_.wsum[e] / tree_.visits[e] : mixed;
        sigma[i] = c;
        lo = std::min(lo, c);
        hi = std::max(hi, c);
        max_visits = std::max(max_visits, tree_.visits[e]);
    }
    const double range = std::max(hi - lo, 1e-8);
    const double scale = (params_.c_visit + double(max_visits)) * params_.c_scale;
    for (int i = 0; i < nd.count; ++i) sigma[i] = scale * ((sigma[i] - lo) / range);
}

int GumbelSearch::select_interior(int node) {
    completed_sigma(node, sigma_);
    const Node& nd = tree_.nodes[node];
    scratch_.resize(nd.count);
    scratch2_.resize(nd.count);
    for (int i = 0; i < nd.count; ++i) scratch_[i] = tree_.logit[nd.first + i] + sigma_[i];
    softmax(scratch_.data(), nd.count, scratch2_.data());
    const double denom = 1.0 + double(nd.total);
    int best = 0;
    double best_score = -INFINITY;
    for (int i = 0; i < nd.count; ++i) {
        const double s = scratch2_[i] - double(tree_.visits[nd.first + i]) / denom;
        if (s > best_score) {
            best_score = s;
            best = i;
        }
    }
    return best;
}

int GumbelSearch::action() {
    completed_sigma(0, sigma_);
    const Node& root = tree_.nodes[0];
    int top = -1;
    for (int a : considered_) top = std::max(top, tree_.visits[root.first + a]);
    int best = -1;
    double best_score = -INFINITY;
    for (int a : considered_) {
        if (tree_.visits[root.first + a] != top) continue;
        const double s = gumbel_[a] + tree_.logit[root.first + a] + sigma_[a];
        if (best < 0 || s > best_score) {
            best = a;
            best_score = s;
        }
    }
    return best;
}

void GumbelSearch::policy(std::vector<double>& out) {
    completed_sigma(0, sigma_);
    const Node& root = tree_.nodes[0];
    scratch_.resize(root.count);
    for (int a = 0; a < root.count; ++a) scratch_[a] = tree_.logit[root.first + a] + sigma_[a];
    out.resize(root.count);
    softmax(scratch_.data(), root.count, out.data());
    if (!mate_at_once_) return;
    std::fill(out.begin(), out.end(), 0.0);  // a proven win: the target is the mate
    for (int a : considered_) out[a] = 1.0 / double(considered_.size());
}

double GumbelSearch::value() { return mixed_value(0); }

}  // namespace l4d
