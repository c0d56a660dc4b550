// Many self-play games in one process: a port of l4demons/selfplay (play_games).
//
// Each network call evaluates one contiguous batch holding the leaves every game
// in flight wants now; a game whose search finished plays its move and starts
// the next search in the same pass, so batches stay full. Every rule of the
// Python reference is here: playout caps, resignation with played-out games,
// draw and material adjudication, the length cap, play-on of decided games. Game number i draws its
// random numbers from its own stream (noise.hpp game_seed), so a game's moves do
// not depend on which other games shared its batches.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gumbel.hpp"

namespace l4d {

struct SelfPlayParams {
    int simulations = 32;
    int fast_simulations = 8;
    double full_search_prob = 0.25;
    int max_considered = 16;
    int max_plies = 300;
    int adjudicate_material = 3;
    int material_win = 5;
    int material_win_plies = 10;
    double resign_threshold = -0.9;
    int resign_moves = 3;
    double resign_playthrough = 0.1;
    double draw_threshold = 0.0;
    int draw_min_ply = 120;
    int draw_plies = 16;
    int concurrent_games = 32;
    int sample_plies = 300;  // moves sampled (Gumbel noise) before this ply; the search's best after it
    int play_on_simulations = 0;  // >0: a game the material rule decided plays on with searches this cheap
    double play_on_noise = 1.0;   // scale of the Gumbel noise on a played-on game's moves (0: the search's best)
    int play_on_plies = 0;        // >0: a decided game ends after this many plies of play-on, scored as at max_plies
    GumbelParams gumbel;
};

struct FinishedGame {
    int index = 0;  // the game's number in the run (its random stream)
    std::vector<Record> positions;
    std::vector<int32_t> offsets{0};
    std::vector<uint16_t> indices;
    std::vector<float> probs;
    std::vector<uint8_t> full;
    std::vector<double> values;
    std::vector<int8_t> results;
    std::vector<Move> moves;
    std::string termination;
    bool false_resign = false;
    bool would_resign = false;
    int played_on = 0;  // positions searched after the material rule decided the game (its last ones)
};

class SelfPlay {
   public:
    SelfPlay(const SelfPlayParams& params, int n_games, uint64_t seed);
    ~SelfPlay();
    // Advances every game that can move without the network and writes the leaves the
    // games want now; returns how many (0 only when every game has finished).
    int collect(BatchOut& out);
    void deliver(BatchIn& in);
    std::vector<FinishedGame> take_finished();
    // Game number `index` starts from `board` instead of the opening; call before that game starts. An
    // ending is played to a rule of chess (no material rule, no resignation); any other start (material
    // odds) plays by the same rules as a game from the opening.
    void set_start(int index, const Board& board, bool ending) { starts_[index] = {board, ending}; }
    bool finished() const;
    // The most leaves one collect can write (rows) and their legal moves (flat entries).
    int64_t max_rows() const;
    int64_t max_flats() const { return max_rows() * MAX_MOVES; }
    int started() const { return started_; }
    int in_flight() const { return int(active_.size()); }

    struct Game;

   private:
    void next_search(Game& g);
    void record_and_play(Game& g);

    SelfPlayParams params_;
    int n_games_;
    uint64_t seed_;
    int started_ = 0;
    std::vector<std::unique_ptr<Game>> active_;
    std::vector<Game*> collected_;
    std::vector<FinishedGame> finished_;
    std::vector<double> policy_;
    std::unordered_map<int, std::pair<Board, bool>> starts_;  // game -> (start, an ending?)
};

}  // namespace l4d
