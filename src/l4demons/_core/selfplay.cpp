// The self-play scheduler; see selfplay.hpp and l4demons/selfplay/reference.py.
#include "selfplay.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace l4d {

struct SelfPlay::Game {
    FinishedGame rec;
    Board board;
    std::vector<uint64_t> keys;
    SplitMix64 noise;
    bool may_resign = true;
    int low_streak[2] = {0, 0};
    int would_resign = -1;  // the colour that would have resigned in a played-out game
    int draw_streak = 0;
    int lead_streak = 0;
    bool from_ending = false;  // started from an ending: no material rule, no resignation
    bool decided = false;      // the material rule decided it and it plays on: cheap searches, no resignation
    int decided_ply = 0;       // the ply the material rule decided it at
    bool over = false;
    int white_result = 0;
    GumbelSearch search;
    bool full_now = false;
    std::vector<uint8_t> turns;

    void end(const char* why, int result) {
        over = true;
        rec.termination = why;
        white_result = result;
    }

    // selfplay.reference.Game._material_decided: a lead held long enough wins (a bootstrapping label).
    bool material_decided(const SelfPlayParams& p) {
        const int n = p.material_win;
        if (n <= 0 || from_ending || decided) return false;
        const int lead = board.material_balance();
        const int side = (lead >= n) - (lead <= -n);
        lead_streak = (side != 0 && lead_streak * side >= 0) ? lead_streak + side : side;
        return std::abs(lead_streak) >= p.material_win_plies;
    }

    // selfplay.reference.Game.play: push the searched move, then decide whether the game is over.
    void play(Move move, double value, const SelfPlayParams& p) {
        const int mover = board.turn;
        board.play(move);
        keys.push_back(board.key);
        rec.moves.push_back(move);
        int result = 0;
        static const char* names[] = {"", "checkmate", "stalemate", "insufficient", "fifty_moves", "repetition"};
        const Termination t = game_over(board, keys, result);
        if (t != NOT_OVER) return end(names[t], result);
        low_streak[mover] = value < p.resign_threshold ? low_streak[mover] + 1 : 0;
        if (p.resign_threshold > -1.0 && low_streak[mover] >= p.resign_moves) {
            if (may_resign) return end("resign", mover == WHITE ? -1 : 1);
            if (would_resign < 0) would_resign = mover;
        }
        draw_streak = std::fabs(value) < p.draw_threshold ? draw_streak + 1 : 0;
        if (p.draw_threshold > 0 && board.ply() >= p.draw_min_ply && draw_streak >= p.draw_plies) {
            end("adjudicated_draw", 0);
        } else if (material_decided(p)) {
            if (p.play_on_simulations > 0) {
                decided = true;  // on to a real end, as a game from a won ending
                decided_ply = board.ply();
                may_resign = false;
            } else {
                end("material", board.material_balance() > 0 ? 1 : -1);
            }
        }
        const bool played_on_enough = decided && p.play_on_plies > 0 && board.ply() - decided_ply >= p.play_on_plies;
        const char* cap = board.ply() >= p.max_plies ? "max_plies" : played_on_enough ? "play_on_plies" : nullptr;
        if (!over && cap) {
            const int lead = board.material_balance(), n = p.adjudicate_material;
            end(cap, n > 0 ? (lead >= n) - (lead <= -n) : 0);
        }
    }

    void finish() {
        rec.results.resize(turns.size());
        for (size_t i = 0; i < turns.size(); ++i) rec.results[i] = int8_t(turns[i] ? white_result : -white_result);
        rec.would_resign = would_resign >= 0;
        rec.false_resign = would_resign >= 0 && white_result != (would_resign == WHITE ? -1 : 1);
    }
};

SelfPlay::SelfPlay(const SelfPlayParams& params, int n_games, uint64_t seed)
    : params_(params), n_games_(n_games), seed_(seed) {}

SelfPlay::~SelfPlay() = default;

bool SelfPlay::finished() const { return started_ >= n_games_ && active_.empty(); }

int64_t SelfPlay::max_rows() const {
    return int64_t(std::max(1, params_.max_considered)) * std::max(1, std::min(params_.concurrent_games, n_games_));
}

void SelfPlay::next_search(Game& g) {
    g.full_now = !g.decided && g.noise.uniform() < params_.full_search_prob;
    const int sims = g.decided    ? params_.play_on_simulations  // played on: cheap, never a policy target
                     : g.full_now ? params_.simulations
                                  : params_.fast_simulations;
    GumbelParams gumbel = params_.gumbel;
    if (g.decided) gumbel.gumbel_scale *= params_.play_on_noise;
    if (g.board.ply() >= params_.sample_plies) gumbel.gumbel_scale = 0.0;  // past the opening: the best move
    g.search.start(g.board, &g.keys, sims, gumbel, &g.noise);
}

void SelfPlay::record_and_play(Game& g) {
    GumbelSearch& s = g.search;
    const int action = s.action();
    s.policy(policy_);
    const double value = s.value();
    const Tree& tree = s.tree();
    const Node& root = tree.nodes[0];
    FinishedGame& r = g.rec;
    r.played_on += g.decided;
    r.positions.push_back(s.root_record());
    for (int a = 0; a < root.count; ++a) {
        r.indices.push_back(tree.pidx[root.first + a]);
        r.probs.push_back(float(policy_[a]));
    }
    r.offsets.push_back(r.offsets.back() + root.count);
    r.full.push_back(g.full_now && root.count > 1);
    r.values.push_back(value);
    g.turns.push_back(g.board.turn == WHITE);
    g.play(tree.move[root.first + action], value, params_);
}

int SelfPlay::collect(BatchOut& out) {
    while (started_ < n_games_ && int(active_.size()) < params_.concurrent_games) {
        auto g = std::make_unique<Game>();
        g->rec.index = started_;
        g->noise = SplitMix64(game_seed(seed_, uint64_t(started_)));
        g->may_resign = g->noise.uniform() >= params_.resign_playthrough;
        const auto start = starts_.find(started_);
        const bool given = start != starts_.end();
        g->from_ending = given && start->second.second;
        if (g->from_ending) g->may_resign = false;
        g->board = given ? start->second.first : Board::start();
        g->keys.push_back(g->board.key);
        next_search(*g);
        active_.push_back(std::move(g));
        ++started_;
    }
    collected_.clear();
    const int64_t start = out.rows;
    if (out.cap_rows - start < max_rows()) throw std::length_error("leaf batch buffer too small for the games in flight");
    for (auto& game : active_) {
        Game& g = *game;
        int wanted = g.search.collect(out);
        while (g.search.done()) {
            record_and_play(g);
            if (g.over) break;
            next_search(g);
            wanted = g.search.collect(out);
        }
        if (g.over) {
            g.finish();
            finished_.push_back(std::move(g.rec));
        } else if (wanted > 0) {
            collected_.push_back(&g);
        }
    }
    active_.erase(std::remove_if(active_.begin(), active_.end(), [](const auto& g) { return g->over; }), active_.end());
    return int(out.rows - start);
}

void SelfPlay::deliver(BatchIn& in) {
    for (Game* g : collected_) g->search.deliver(in);
    collected_.clear();
}

std::vector<FinishedGame> SelfPlay::take_finished() {
    std::vector<FinishedGame> out;
    out.swap(finished_);
    return out;
}

}  // namespace l4d
