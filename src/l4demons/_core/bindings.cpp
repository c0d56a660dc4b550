// The Python module l4demons._core: positions (for tests and the bot's root),
// the PUCT and Gumbel searches, and the self-play scheduler.
//
// Batches are numpy arrays Python owns (views of torch tensors, pinned on CUDA):
// the core writes input planes and flat logit positions into them and reads the
// network's answers back, without copies. Long calls release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>

#include "gumbel.hpp"
#include "puct.hpp"
#include "selfplay.hpp"

namespace py = pybind11;
using namespace l4d;

namespace {

constexpr int ABI_VERSION = 5;  // bumped with every change of this interface (core.py checks it)

template <class T>
T* buffer(py::array& a, const char* name, int64_t& size) {
    if (!py::isinstance<py::array_t<T>>(a) || !(a.flags() & py::array::c_style) || !a.writeable())
        throw py::type_error(std::string(name) + ": expected a writable C-contiguous array of the right dtype");
    size = int64_t(a.size());
    return static_cast<T*>(a.mutable_data());
}

template <class T>
const T* input(const py::array& a, const char* name, int64_t& size) {
    if (!py::isinstance<py::array_t<T>>(a) || !(a.flags() & py::array::c_style))
        throw py::type_error(std::string(name) + ": expected a C-contiguous array of the right dtype");
    size = int64_t(a.size());
    return static_cast<const T*>(a.data());
}

template <class T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
    return py::array_t<T>(py::ssize_t(v.size()), v.data());
}

// A game: the current board and the keys of every position so far (for repetitions).
struct Position {
    Board board;
    std::vector<uint64_t> keys;

    void push(Move m) {
        Move moves[MAX_MOVES];
        const int n = board.legal_moves(moves);
        bool legal = false;
        for (int i = 0; i < n && !legal; ++i) legal = moves[i] == m;
        if (!legal) throw py::value_error("illegal move " + move_uci(m));
        board.play(m);
        keys.push_back(board.key);
    }
};

Position make_position(const std::vector<uint64_t>& types, const std::vector<uint64_t>& colors, int turn,
                       uint64_t castling, int ep, int halfmove, int fullmove, const std::vector<int>& moves) {
    if (types.size() != 6 || colors.size() != 2) throw py::value_error("expected 6 piece and 2 colour bitboards");
    Position p;
    if (!Board::from_fields(p.board, types.data(), colors.data(), turn, castling, ep, halfmove, fullmove))
        throw py::value_error("a position needs a king of each colour");
    p.keys.push_back(p.board.key);
    for (int m : moves) p.push(Move(m));
    return p;
}

struct Batch {
    BatchOut out;
    Batch(py::array& planes, py::array& flat, int64_t row, int64_t flat_pos) {
        int64_t plane_size, flat_size;
        out.planes = buffer<float>(planes, "planes", plane_size);
        out.flat = buffer<int64_t>(flat, "flat", flat_size);
        out.cap_rows = plane_size / PLANE_FLOATS;
        out.cap_flats = flat_size;
        out.rows = row;
        out.flats = flat_pos;
        if (row < 0 || row > out.cap_rows || flat_pos < 0 || flat_pos > out.cap_flats)
            throw py::value_error("batch offsets outside the buffers");
    }
};

BatchIn answers(const py::array& logits, const py::array& values) {
    int64_t n_logits, n_values;
    BatchIn in;
    in.logits = input<float>(logits, "logits", n_logits);
    in.values = input<float>(values, "values", n_values);
    in.logits_end = in.logits + n_logits;
    in.values_end = in.values + n_values;
    return in;
}

py::tuple root_result(const Tree& tree, int action, const std::vector<double>& policy, double value) {
    const Node& root = tree.nodes[0];
    std::vector<uint16_t> moves(tree.move.begin() + root.first, tree.move.begin() + root.first + root.count);
    std::vector<uint16_t> idx(tree.pidx.begin() + root.first, tree.pidx.begin() + root.first + root.count);
    return py::make_tuple(action, to_numpy(moves), to_numpy(idx), to_numpy(policy), value);
}

class PyGumbel {
   public:
    PyGumbel(const Position& p, int simulations, const GumbelParams& params, uint64_t seed)
        : board_(p.board), keys_(p.keys), noise_(seed) {
        search_.start(board_, &keys_, simulations, params, &noise_);
    }
    py::tuple collect(py::array& planes, py::array& flat, int64_t row, int64_t flat_pos) {
        Batch b(planes, flat, row, flat_pos);
        const int n = search_.collect(b.out);
        return py::make_tuple(n, b.out.flats - flat_pos);
    }
    void deliver(const py::array& logits, const py::array& values) {
        BatchIn in = answers(logits, values);
        search_.deliver(in);
    }
    bool done() const { return search_.done(); }
    int nodes() const { return search_.nodes(); }
    py::tuple result() {
        std::vector<double> policy;
        const int action = search_.action();
        search_.policy(policy);
        return root_result(search_.tree(), action, policy, search_.value());
    }

   private:
    Board board_;
    std::vector<uint64_t> keys_;
    SplitMix64 noise_;
    GumbelSearch search_;
};

py::list finished_games(SelfPlay& sp) {
    py::list out;
    for (FinishedGame& g : sp.take_finished()) {
        py::array_t<uint8_t> positions({py::ssize_t(g.positions.size()), py::ssize_t(sizeof(Record))});
        if (!g.positions.empty()) std::memcpy(positions.mutable_data(), g.positions.data(), g.positions.size() * sizeof(Record));
        py::array_t<bool> full(py::ssize_t(g.full.size()));
        for (size_t i = 0; i < g.full.size(); ++i) full.mutable_data()[i] = g.full[i] != 0;
        py::list moves(g.moves.size());
        for (size_t i = 0; i < g.moves.size(); ++i) moves[i] = py::str(move_uci(g.moves[i]));
        out.append(py::make_tuple(g.index, positions, to_numpy(g.offsets), to_numpy(g.indices), to_numpy(g.probs), full,
                                  to_numpy(g.values), to_numpy(g.results), moves, g.termination, g.false_resign,
                                  g.would_resign, g.played_on));
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "L4Demons' compiled search core (board, encoding, Gumbel and PUCT trees, self-play scheduler)";
    init_tables();
    init_policy_table();
    m.attr("ABI") = ABI_VERSION;
    m.attr("MAX_MOVES") = MAX_MOVES;

    py::class_<Position>(m, "Position")
        .def(py::init(&make_position), py::arg("types"), py::arg("colors"), py::arg("turn"), py::arg("castling"),
             py::arg("ep"), py::arg("halfmove"), py::arg("fullmove"), py::arg("moves"))
        .def("copy", [](const Position& p) { return p; })
        .def("push", [](Position& p, int m) { p.push(Move(m)); })
        .def("legal_moves",
             [](const Position& p) {
                 Move moves[MAX_MOVES];
                 const int n = p.board.legal_moves(moves);
                 return py::array_t<uint16_t>(n, moves);
             })
        .def("policy_indices",
             [](const Position& p) {
                 Move moves[MAX_MOVES];
                 const int n = p.board.legal_moves(moves);
                 py::array_t<int32_t> out(n);
                 for (int i = 0; i < n; ++i) out.mutable_data()[i] = policy_index(moves[i], p.board.turn);
                 return out;
             })
        .def("record",
             [](const Position& p) {
                 const Record r = encode_record(p.board, repeated_once(p.board, p.keys));
                 return py::bytes(reinterpret_cast<const char*>(&r), sizeof(Record));
             })
        .def("write_planes",
             [](const Position& p, py::array& out) {
                 int64_t size;
                 float* dst = buffer<float>(out, "out", size);
                 if (size < PLANE_FLOATS) throw py::value_error("out must hold 20 x 8 x 8 floats");
                 write_planes(encode_record(p.board, repeated_once(p.board, p.keys)), dst);
             })
        .def("game_over",
             [](const Position& p) -> py::object {
                 static const char* names[] = {"", "checkmate", "stalemate", "insufficient", "fifty_moves", "repetition"};
                 int result;
                 const Termination t = game_over(p.board, p.keys, result);
                 if (t == NOT_OVER) return py::none();
                 return py::make_tuple(names[t], result);
             })
        .def("terminal_value",
             [](const Position& p, bool in_search) -> py::object {
                 Move moves[MAX_MOVES];
                 double v;
                 if (!terminal_value(p.board, p.board.legal_moves(moves), p.keys, in_search, v)) return py::none();
                 return py::float_(v);
             },
             py::arg("in_search") = true)
        .def("is_check", [](const Position& p) { return p.board.in_check(); })
        .def("material_balance", [](const Position& p) { return p.board.material_balance(); })
        .def("perft", [](const Position& p, int depth) { return perft(p.board, depth); })
        .def_property_readonly("turn", [](const Position& p) { return int(p.board.turn); })
        .def_property_readonly("key", [](const Position& p) { return p.board.key; })
        .def_property_readonly("key_from_scratch", [](const Position& p) { return p.board.compute_key(); });

    py::class_<GumbelParams>(m, "GumbelParams")
        .def(py::init([](int max_considered, double c_visit, double c_scale, double gumbel_scale) {
                 return GumbelParams{max_considered, c_visit, c_scale, gumbel_scale};
             }),
             py::arg("max_considered"), py::arg("c_visit"), py::arg("c_scale"), py::arg("gumbel_scale"));

    py::class_<PyGumbel>(m, "GumbelSearch")
        .def(py::init<const Position&, int, const GumbelParams&, uint64_t>(), py::arg("position"),
             py::arg("simulations"), py::arg("params"), py::arg("seed"))
        .def("collect", &PyGumbel::collect)
        .def("deliver", &PyGumbel::deliver)
        .def_property_readonly("done", &PyGumbel::done)
        .def_property_readonly("nodes", &PyGumbel::nodes)
        .def("result", &PyGumbel::result);

    py::class_<PuctSearch>(m, "PuctSearch")
        .def(py::init([](const Position& p, double c_puct, double fpu_reduction, const std::vector<int>& allowed,
                         double policy_temp) {
                 std::vector<Move> moves(allowed.begin(), allowed.end());
                 return std::make_unique<PuctSearch>(p.board, p.keys,
                                                     PuctParams{c_puct, fpu_reduction, 16, policy_temp}, moves);
             }),
             py::arg("position"), py::arg("c_puct"), py::arg("fpu_reduction"), py::arg("allowed"),
             py::arg("policy_temp") = 1.0)
        .def("collect",
             [](PuctSearch& s, py::array& planes, py::array& flat, int64_t row, int64_t flat_pos, int want) {
                 Batch b(planes, flat, row, flat_pos);
                 int n;
                 {
                     py::gil_scoped_release release;
                     n = s.collect(b.out, want);
                 }
                 return py::make_tuple(n, b.out.flats - flat_pos);
             })
        .def("deliver",
             [](PuctSearch& s, const py::array& logits, const py::array& values) {
                 BatchIn in = answers(logits, values);
                 py::gil_scoped_release release;
                 s.deliver(in);
             })
        .def("reuse",
             [](PuctSearch& s, const PuctSearch& old, const std::vector<int>& path) {
                 return s.reuse(old, std::vector<Move>(path.begin(), path.end()));
             },
             py::arg("old"), py::arg("path"))
        .def_property_readonly("started", &PuctSearch::started)
        .def_property_readonly("done", &PuctSearch::done)
        .def_property_readonly("nodes", &PuctSearch::nodes)
        .def_property_readonly("max_depth", &PuctSearch::max_depth)
        .def_property_readonly("visits", &PuctSearch::visits)
        .def("result",
             [](const PuctSearch& s) {
                 std::vector<double> policy;
                 s.policy(policy);
                 return root_result(s.tree(), s.action(), policy, s.value());
             })
        .def("principal_variation", [](const PuctSearch& s, int max_len) { return to_numpy(s.principal_variation(max_len)); });

    py::class_<SelfPlayParams>(m, "SelfPlayParams")
        .def(py::init<>())
        .def_readwrite("simulations", &SelfPlayParams::simulations)
        .def_readwrite("fast_simulations", &SelfPlayParams::fast_simulations)
        .def_readwrite("full_search_prob", &SelfPlayParams::full_search_prob)
        .def_readwrite("max_considered", &SelfPlayParams::max_considered)
        .def_readwrite("max_plies", &SelfPlayParams::max_plies)
        .def_readwrite("adjudicate_material", &SelfPlayParams::adjudicate_material)
        .def_readwrite("material_win", &SelfPlayParams::material_win)
        .def_readwrite("material_win_plies", &SelfPlayParams::material_win_plies)
        .def_readwrite("resign_threshold", &SelfPlayParams::resign_threshold)
        .def_readwrite("resign_moves", &SelfPlayParams::resign_moves)
        .def_readwrite("resign_playthrough", &SelfPlayParams::resign_playthrough)
        .def_readwrite("draw_threshold", &SelfPlayParams::draw_threshold)
        .def_readwrite("draw_min_ply", &SelfPlayParams::draw_min_ply)
        .def_readwrite("draw_plies", &SelfPlayParams::draw_plies)
        .def_readwrite("concurrent_games", &SelfPlayParams::concurrent_games)
        .def_readwrite("sample_plies", &SelfPlayParams::sample_plies)
        .def_readwrite("play_on_simulations", &SelfPlayParams::play_on_simulations)
        .def_readwrite("play_on_noise", &SelfPlayParams::play_on_noise)
        .def_readwrite("play_on_plies", &SelfPlayParams::play_on_plies)
        .def_readwrite("gumbel", &SelfPlayParams::gumbel);

    py::class_<SelfPlay>(m, "SelfPlay")
        .def(py::init<const SelfPlayParams&, int, uint64_t>(), py::arg("params"), py::arg("games"), py::arg("seed"))
        .def("collect",
             [](SelfPlay& sp, py::array& planes, py::array& flat) {
                 Batch b(planes, flat, 0, 0);
                 int n;
                 {
                     py::gil_scoped_release release;
                     n = sp.collect(b.out);
                 }
                 return py::make_tuple(n, b.out.flats);
             })
        .def("deliver",
             [](SelfPlay& sp, const py::array& logits, const py::array& values) {
                 BatchIn in = answers(logits, values);
                 py::gil_scoped_release release;
                 sp.deliver(in);
             })
        .def("take_finished", &finished_games)
        .def("set_start",
             [](SelfPlay& sp, int index, const Position& p, bool ending) { sp.set_start(index, p.board, ending); },
             py::arg("index"), py::arg("position"), py::arg("ending") = true)
        .def_property_readonly("finished", &SelfPlay::finished)
        .def_property_readonly("started", &SelfPlay::started)
        .def_property_readonly("in_flight", &SelfPlay::in_flight)
        .def_property_readonly("max_rows", &SelfPlay::max_rows)
        .def_property_readonly("max_flats", &SelfPlay::max_flats);

    m.def("move_uci", [](int mv) { return move_uci(Move(mv)); });
}
