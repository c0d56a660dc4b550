// Board, move generation and rules; see board.hpp for what mirrors python-chess and why.
#include "board.hpp"

#include "noise.hpp"

namespace l4d {

Tables T;

namespace {

struct Zobrist {
    uint64_t piece[2][7][64];
    uint64_t side;
    uint64_t castling[16];
    uint64_t ep_file[8];
};
Zobrist Z;

constexpr int DIR_DF[8] = {0, 1, 1, 1, 0, -1, -1, -1};
constexpr int DIR_DR[8] = {1, 1, 0, -1, -1, -1, 0, 1};

Bitboard step_set(int sq, const int (*deltas)[2], int count) {
    Bitboard b = 0;
    for (int i = 0; i < count; ++i) {
        int f = file_of(sq) + deltas[i][0], r = rank_of(sq) + deltas[i][1];
        if (f >= 0 && f < 8 && r >= 0 && r < 8) b |= square_bb(r * 8 + f);
    }
    return b;
}

// The raw castling bit a square's corner carries (moving from or to it clears the right).
inline uint8_t corner_bit(int sq) {
    switch (sq) {
        case 7: return CASTLE_WK;
        case 0: return CASTLE_WQ;
        case 63: return CASTLE_BK;
        case 56: return CASTLE_BQ;
        default: return 0;
    }
}

}  // namespace

void init_tables() {
    static bool done = false;
    if (done) return;
    static const int knight_d[8][2] = {{1, 2}, {2, 1}, {2, -1}, {1, -2}, {-1, -2}, {-2, -1}, {-2, 1}, {-1, 2}};
    static const int king_d[8][2] = {{0, 1}, {1, 1}, {1, 0}, {1, -1}, {0, -1}, {-1, -1}, {-1, 0}, {-1, 1}};
    static const int wpawn_d[2][2] = {{-1, 1}, {1, 1}};
    static const int bpawn_d[2][2] = {{-1, -1}, {1, -1}};
    for (int sq = 0; sq < 64; ++sq) {
        T.knight[sq] = step_set(sq, knight_d, 8);
        T.king[sq] = step_set(sq, king_d, 8);
        T.pawn[WHITE][sq] = step_set(sq, wpawn_d, 2);
        T.pawn[BLACK][sq] = step_set(sq, bpawn_d, 2);
        for (int d = 0; d < 8; ++d) {
            Bitboard r = 0;
            for (int f = file_of(sq) + DIR_DF[d], k = rank_of(sq) + DIR_DR[d]; f >= 0 && f < 8 && k >= 0 && k < 8;
                 f += DIR_DF[d], k += DIR_DR[d])
                r |= square_bb(k * 8 + f);
            T.ray[d][sq] = r;
        }
        T.rook_rays[sq] = T.ray[DIR_N][sq] | T.ray[DIR_E][sq] | T.ray[DIR_S][sq] | T.ray[DIR_W][sq];
        T.bishop_rays[sq] = T.ray[DIR_NE][sq] | T.ray[DIR_SE][sq] | T.ray[DIR_SW][sq] | T.ray[DIR_NW][sq];
    }
    for (int a = 0; a < 64; ++a) {
        for (int b = 0; b < 64; ++b) {
            T.between[a][b] = 0;
            T.line[a][b] = 0;
            for (int d = 0; d < 8; ++d) {
                if (T.ray[d][a] & square_bb(b)) {
                    T.between[a][b] = T.ray[d][a] & T.ray[(d + 4) % 8][b];
                    T.line[a][b] = T.ray[d][a] | T.ray[(d + 4) % 8][a] | square_bb(a);
                }
            }
        }
    }
    SplitMix64 rng(0x4C34446D6F6E73ULL);  // fixed: keys never leave the process, but runs stay reproducible
    for (auto& color : Z.piece)
        for (auto& pt : color)
            for (auto& sq : pt) sq = rng.next();
    Z.side = rng.next();
    for (auto& c : Z.castling) c = rng.next();
    for (auto& e : Z.ep_file) e = rng.next();
    done = true;
}

std::string move_uci(Move m) {
    static const char promo_char[7] = {0, 0, 'n', 'b', 'r', 'q', 0};
    std::string s;
    s += char('a' + file_of(move_from(m)));
    s += char('1' + rank_of(move_from(m)));
    s += char('a' + file_of(move_to(m)));
    s += char('1' + rank_of(move_to(m)));
    if (move_promo(m)) s += promo_char[move_promo(m)];
    return s;
}

void Board::put(int color, int pt, int sq) {
    pieces[pt] |= square_bb(sq);
    colors[color] |= square_bb(sq);
    piece_on[sq] = uint8_t(pt);
}

void Board::remove(int color, int pt, int sq) {
    pieces[pt] &= ~square_bb(sq);
    colors[color] &= ~square_bb(sq);
    piece_on[sq] = NO_PIECE;
}

Board Board::start() {
    Board b;
    static const int back[8] = {ROOK, KNIGHT, BISHOP, QUEEN, KING, BISHOP, KNIGHT, ROOK};
    for (int f = 0; f < 8; ++f) {
        b.put(WHITE, back[f], f);
        b.put(WHITE, PAWN, 8 + f);
        b.put(BLACK, PAWN, 48 + f);
        b.put(BLACK, back[f], 56 + f);
    }
    b.castling = CASTLE_WK | CASTLE_WQ | CASTLE_BK | CASTLE_BQ;
    b.key = b.compute_key();
    return b;
}

bool Board::from_fields(Board& b, const uint64_t type_bb[6], const uint64_t color_bb[2], int turn,
                        uint64_t castling_rights, int ep_square, int halfmove, int fullmove) {
    b = Board();
    for (int pt = PAWN; pt <= KING; ++pt)
        for (int c = 0; c < 2; ++c)
            for (Bitboard s = type_bb[pt - 1] & color_bb[c]; s; s &= s - 1) b.put(c, pt, lsb(s));
    if (!(b.pieces[KING] & b.colors[WHITE]) || !(b.pieces[KING] & b.colors[BLACK])) return false;
    b.turn = uint8_t(turn);
    b.castling = uint8_t(((castling_rights >> 7) & 1) * CASTLE_WK | (castling_rights & 1) * CASTLE_WQ |
                         ((castling_rights >> 63) & 1) * CASTLE_BK | ((castling_rights >> 56) & 1) * CASTLE_BQ);
    b.halfmove = uint16_t(halfmove < 0 ? 0 : (halfmove > 65535 ? 65535 : halfmove));
    b.fullmove = uint32_t(fullmove < 1 ? 1 : fullmove);
    b.ep = -1;
    if (ep_square >= 0 && ep_square < 64) {
        // python-chess's pseudo-legal en passant: the square empty, on the right rank, a pawn behind it.
        int pushed = ep_square ^ 8;
        bool rank_ok = rank_of(ep_square) == (turn == WHITE ? 5 : 2);
        bool shape_ok = rank_ok && !(b.occupied() & square_bb(ep_square)) &&
                        (b.pieces[PAWN] & b.colors[turn ^ 1] & square_bb(pushed));
        if (shape_ok) b.ep = int8_t(b.legal_ep_square(ep_square));
    }
    b.key = b.compute_key();
    return true;
}

Bitboard Board::attackers(int by, int sq, Bitboard occ) const {
    const Bitboard them = colors[by];
    return ((T.pawn[by ^ 1][sq] & pieces[PAWN]) | (T.knight[sq] & pieces[KNIGHT]) | (T.king[sq] & pieces[KING]) |
            (rook_attacks(sq, occ) & (pieces[ROOK] | pieces[QUEEN])) |
            (bishop_attacks(sq, occ) & (pieces[BISHOP] | pieces[QUEEN]))) &
           them;
}

uint8_t Board::clean_castling() const {
    uint8_t c = castling;
    const Bitboard wr = pieces[ROOK] & colors[WHITE], br = pieces[ROOK] & colors[BLACK];
    if (!(pieces[KING] & colors[WHITE] & square_bb(4))) c &= uint8_t(~(CASTLE_WK | CASTLE_WQ));
    if (!(pieces[KING] & colors[BLACK] & square_bb(60))) c &= uint8_t(~(CASTLE_BK | CASTLE_BQ));
    if (!(wr & square_bb(7))) c &= uint8_t(~CASTLE_WK);
    if (!(wr & square_bb(0))) c &= uint8_t(~CASTLE_WQ);
    if (!(br & square_bb(63))) c &= uint8_t(~CASTLE_BK);
    if (!(br & square_bb(56))) c &= uint8_t(~CASTLE_BQ);
    return c;
}

uint64_t Board::compute_key() const {
    uint64_t k = 0;
    for (int sq = 0; sq < 64; ++sq)
        if (piece_on[sq]) k ^= Z.piece[(colors[BLACK] >> sq) & 1][piece_on[sq]][sq];
    if (turn == BLACK) k ^= Z.side;
    k ^= Z.castling[clean_castling()];
    if (ep >= 0) k ^= Z.ep_file[file_of(ep)];
    return k;
}

bool Board::ep_capture_is_legal(int from, int ep_sq) const {
    const int us = turn, them = us ^ 1;
    const int captured = ep_sq ^ 8;
    const Bitboard occ = (occupied() ^ square_bb(from) ^ square_bb(captured)) | square_bb(ep_sq);
    const Bitboard theirs = colors[them] & ~square_bb(captured);
    const int ksq = king_square(us);
    return !(((rook_attacks(ksq, occ) & (pieces[ROOK] | pieces[QUEEN])) |
              (bishop_attacks(ksq, occ) & (pieces[BISHOP] | pieces[QUEEN])) | (T.knight[ksq] & pieces[KNIGHT]) |
              (T.pawn[us][ksq] & pieces[PAWN]) | (T.king[ksq] & pieces[KING])) &
             theirs);
}

int Board::legal_ep_square(int candidate) const {
    for (Bitboard c = T.pawn[turn ^ 1][candidate] & pieces[PAWN] & colors[turn]; c; c &= c - 1)
        if (ep_capture_is_legal(lsb(c), candidate)) return candidate;
    return -1;
}

void Board::play(Move m) {
    const int from = move_from(m), to = move_to(m), promo = move_promo(m);
    const int us = turn, them = us ^ 1;
    const int pt = piece_on[from];
    const int captured = piece_on[to];
    uint64_t k = key ^ Z.castling[clean_castling()];
    if (ep >= 0) k ^= Z.ep_file[file_of(ep)];
    ++halfmove;
    if (captured) {
        remove(them, captured, to);
        k ^= Z.piece[them][captured][to];
        halfmove = 0;
    }
    remove(us, pt, from);
    k ^= Z.piece[us][pt][from];
    const int placed = promo ? promo : pt;
    put(us, placed, to);
    k ^= Z.piece[us][placed][to];
    int new_ep = -1;
    if (pt == PAWN) {
        halfmove = 0;
        if (!captured && file_of(from) != file_of(to)) {  // en passant
            const int victim = to ^ 8;
            remove(them, PAWN, victim);
            k ^= Z.piece[them][PAWN][victim];
        } else if (to - from == 16 || from - to == 16) {
            new_ep = (from + to) / 2;
        }
    } else if (pt == KING && (to - from == 2 || from - to == 2)) {  // castling: the rook jumps too
        const int rook_from = to > from ? from + 3 : from - 4, rook_to = to > from ? from + 1 : from - 1;
        remove(us, ROOK, rook_from);
        put(us, ROOK, rook_to);
        k ^= Z.piece[us][ROOK][rook_from] ^ Z.piece[us][ROOK][rook_to];
    }
    castling &= uint8_t(~(corner_bit(from) | corner_bit(to)));
    if (pt == KING) castling &= uint8_t(us == WHITE ? ~(CASTLE_WK | CASTLE_WQ) : ~(CASTLE_BK | CASTLE_BQ));
    turn = uint8_t(them);
    if (us == BLACK) ++fullmove;
    ep = int8_t(new_ep >= 0 ? legal_ep_square(new_ep) : -1);
    k ^= Z.side ^ Z.castling[clean_castling()];
    if (ep >= 0) k ^= Z.ep_file[file_of(ep)];
    key = k;
}

Bitboard Board::slider_blockers(int ksq) const {
    const Bitboard occ = occupied();
    const Bitboard snipers = ((T.rook_rays[ksq] & (pieces[ROOK] | pieces[QUEEN])) |
                              (T.bishop_rays[ksq] & (pieces[BISHOP] | pieces[QUEEN]))) &
                             colors[turn ^ 1];
    Bitboard blockers = 0;
    for (Bitboard s = snipers; s; s &= s - 1) {
        const Bitboard b = T.between[ksq][lsb(s)] & occ;
        if (b && !(b & (b - 1))) blockers |= b;
    }
    return blockers & colors[turn];
}

namespace {

inline void add_promotions(Move* out, int& n, int from, int to) {
    out[n++] = make_move(from, to, QUEEN);
    out[n++] = make_move(from, to, ROOK);
    out[n++] = make_move(from, to, BISHOP);
    out[n++] = make_move(from, to, KNIGHT);
}

}  // namespace

void Board::gen_castling(Move* out, int& n, int ksq) const {
    const uint8_t clean = clean_castling();
    const int us = turn, them = us ^ 1;
    const Bitboard occ = occupied();
    // Kingside (the rook on the higher square) first, as python-chess scans rights from the top.
    const int rooks[2] = {us == WHITE ? 7 : 63, us == WHITE ? 0 : 56};
    const uint8_t bits[2] = {uint8_t(us == WHITE ? CASTLE_WK : CASTLE_BK), uint8_t(us == WHITE ? CASTLE_WQ : CASTLE_BQ)};
    for (int i = 0; i < 2; ++i) {
        if (!(clean & bits[i])) continue;
        const int rook = rooks[i];
        const bool a_side = rook < ksq;
        const int king_to = a_side ? ksq - 2 : ksq + 2, rook_to = a_side ? ksq - 1 : ksq + 1;
        const Bitboard king_path = T.between[ksq][king_to], rook_path = T.between[rook][rook_to];
        const Bitboard others = occ ^ square_bb(ksq) ^ square_bb(rook);
        if (others & (king_path | rook_path | square_bb(king_to) | square_bb(rook_to))) continue;
        bool attacked = false;
        for (Bitboard p = king_path | square_bb(ksq); p && !attacked; p &= p - 1)
            attacked = attackers(them, lsb(p), occ ^ square_bb(ksq)) != 0;
        if (attacked) continue;
        if (attackers(them, king_to, occ ^ square_bb(ksq) ^ square_bb(rook) ^ square_bb(rook_to))) continue;
        out[n++] = make_move(ksq, king_to);
    }
}

void Board::gen_pseudo(Move* out, int& n, Bitboard from_mask, Bitboard to_mask, Bitboard blockers, int ksq,
                       bool castling_too) const {
    const int us = turn, them = us ^ 1;
    const Bitboard own = colors[us], enemy = colors[them], occ = own | enemy;
    const Bitboard kbb = square_bb(ksq);
    auto safe = [&](int from, int to) { return !(blockers & square_bb(from)) || (T.line[from][to] & kbb); };
    // Pieces, from the highest square down, each target from the highest down.
    for (Bitboard s = own & ~pieces[PAWN] & from_mask; s;) {
        const int from = msb(s);
        s ^= square_bb(from);
        Bitboard att;
        switch (piece_on[from]) {
            case KNIGHT: att = T.knight[from]; break;
            case BISHOP: att = bishop_attacks(from, occ); break;
            case ROOK: att = rook_attacks(from, occ); break;
            case QUEEN: att = bishop_attacks(from, occ) | rook_attacks(from, occ); break;
            default: att = T.king[from]; break;
        }
        for (Bitboard t = att & ~own & to_mask; t;) {
            const int to = msb(t);
            t ^= square_bb(to);
            if (from == ksq ? attackers(them, to, occ ^ kbb) == 0 : safe(from, to)) out[n++] = make_move(from, to);
        }
    }
    if (castling_too) gen_castling(out, n, ksq);
    const Bitboard pawns = own & pieces[PAWN] & from_mask;
    if (!pawns) return;
    for (Bitboard s = pawns; s;) {
        const int from = msb(s);
        s ^= square_bb(from);
        for (Bitboard t = T.pawn[us][from] & enemy & to_mask; t;) {
            const int to = msb(t);
            t ^= square_bb(to);
            if (!safe(from, to)) continue;
            if (rank_of(to) == 0 || rank_of(to) == 7)
                add_promotions(out, n, from, to);
            else
                out[n++] = make_move(from, to);
        }
    }
    Bitboard single, dbl;
    if (us == WHITE) {
        single = (pawns << 8) & ~occ;
        dbl = (single << 8) & ~occ & (0xFFULL << 16 | 0xFFULL << 24);
    } else {
        single = (pawns >> 8) & ~occ;
        dbl = (single >> 8) & ~occ & (0xFFULL << 40 | 0xFFULL << 32);
    }
    single &= to_mask;
    dbl &= to_mask;
    for (Bitboard t = single; t;) {
        const int to = msb(t);
        t ^= square_bb(to);
        const int from = us == WHITE ? to - 8 : to + 8;
        if (!safe(from, to)) continue;
        if (rank_of(to) == 0 || rank_of(to) == 7)
            add_promotions(out, n, from, to);
        else
            out[n++] = make_move(from, to);
    }
    for (Bitboard t = dbl; t;) {
        const int to = msb(t);
        t ^= square_bb(to);
        const int from = us == WHITE ? to - 16 : to + 16;
        if (safe(from, to)) out[n++] = make_move(from, to);
    }
    if (ep >= 0 && (square_bb(ep) & to_mask)) {
        for (Bitboard c = pawns & T.pawn[them][ep]; c;) {
            const int from = msb(c);
            c ^= square_bb(from);
            if (ep_capture_is_legal(from, ep)) out[n++] = make_move(from, ep);
        }
    }
}

int Board::legal_moves(Move* out) const {
    int n = 0;
    const int us = turn, them = us ^ 1;
    const Bitboard own = colors[us], occ = occupied();
    const int ksq = king_square(us);
    const Bitboard checkers = attackers(them, ksq, occ);
    const Bitboard blockers = slider_blockers(ksq);
    if (!checkers) {
        gen_pseudo(out, n, ~0ULL, ~0ULL, blockers, ksq, true);
        return n;
    }
    // Evasions, in python-chess's order: king moves, then (single check) captures and blocks, then en passant.
    for (Bitboard t = T.king[ksq] & ~own; t;) {
        const int to = msb(t);
        t ^= square_bb(to);
        if (!attackers(them, to, occ ^ square_bb(ksq))) out[n++] = make_move(ksq, to);
    }
    if (checkers & (checkers - 1)) return n;
    const int checker = lsb(checkers);
    const Bitboard target = T.between[ksq][checker] | checkers;
    gen_pseudo(out, n, ~pieces[KING], target, blockers, ksq, false);
    if (ep >= 0 && !(square_bb(ep) & target) && (ep ^ 8) == checker) {
        for (Bitboard c = own & pieces[PAWN] & T.pawn[them][ep]; c;) {
            const int from = msb(c);
            c ^= square_bb(from);
            if (ep_capture_is_legal(from, ep)) out[n++] = make_move(from, ep);
        }
    }
    return n;
}

bool Board::has_insufficient_material(int color) const {
    const Bitboard mine = colors[color], theirs = colors[color ^ 1];
    if (mine & (pieces[PAWN] | pieces[ROOK] | pieces[QUEEN])) return false;
    if (mine & pieces[KNIGHT]) return popcount(mine) <= 2 && !(theirs & ~pieces[KING] & ~pieces[QUEEN]);
    if (mine & pieces[BISHOP]) {
        const bool same_color = !(pieces[BISHOP] & DARK_SQUARES) || !(pieces[BISHOP] & LIGHT_SQUARES);
        return same_color && !pieces[PAWN] && !pieces[KNIGHT];
    }
    return true;
}

bool Board::insufficient_material() const { return has_insufficient_material(WHITE) && has_insufficient_material(BLACK); }

int Board::material_balance() const {
    static const int value[7] = {0, 1, 3, 3, 5, 9, 0};
    int total = 0;
    for (int pt = PAWN; pt <= QUEEN; ++pt)
        total += value[pt] * (popcount(pieces[pt] & colors[WHITE]) - popcount(pieces[pt] & colors[BLACK]));
    return total;
}

uint64_t perft(const Board& b, int depth) {
    Move moves[MAX_MOVES];
    const int n = b.legal_moves(moves);
    if (depth <= 1) return depth == 1 ? uint64_t(n) : 1;
    uint64_t total = 0;
    for (int i = 0; i < n; ++i) {
        Board c = b;
        c.play(moves[i]);
        total += perft(c, depth - 1);
    }
    return total;
}

}  // namespace l4d
