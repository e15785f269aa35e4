"""Independent, deliberately plain numpy forwards written from the published formulas.

They read the *raw* state dicts in the published layouts (torch Linear (out, in), GPT-2 Conv1D
(in, out)), loop over heads, and share no code with the package under test.
"""

import math

import numpy as np


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + eps))


def gelu_erf(x):
    return np.array([[0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in row] for row in x])


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * np.power(x, 3))))


def softmax_rows(s):
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def head_attention(q, k, v, scale, causal):
    s = (q @ k.T) * scale
    if causal:
        n = s.shape[0]
        for i in range(n):
            for j in range(i + 1, n):
                s[i, j] = -np.inf
    return softmax_rows(s) @ v


def f64(sd):
    return {k: np.asarray(v, dtype=np.float64) for k, v in sd.items()}


def bert_forward(sd, cfg, ids, prefix=""):
    sd = f64(sd)
    g = lambda n: sd[prefix + n]  # noqa: E731
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    hd, eps, N = D // H, cfg["layer_norm_eps"], len(ids)
    x = (
        g("embeddings.word_embeddings.weight")[ids]
        + g("embeddings.position_embeddings.weight")[:N]
        + g("embeddings.token_type_embeddings.weight")[0]
    )
    x = layer_norm(x, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    hidden, attn_out = [x], []
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda t, n: t @ g(p + n + ".weight").T + g(p + n + ".bias")  # noqa: B023, E731
        q, k, v = lin(x, "attention.self.query"), lin(x, "attention.self.key"), lin(x, "attention.self.value")
        ctx = np.zeros((N, D))
        for h in range(H):
            sl = slice(h * hd, (h + 1) * hd)
            ctx[:, sl] = head_attention(q[:, sl], k[:, sl], v[:, sl], 1 / math.sqrt(hd), False)
        a = lin(ctx, "attention.output.dense")
        attn_out.append(a)
        x = layer_norm(
            x + a, g(p + "attention.output.LayerNorm.weight"), g(p + "attention.output.LayerNorm.bias"), eps
        )
        m = lin(gelu_erf(lin(x, "intermediate.dense")), "output.dense")
        x = layer_norm(x + m, g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias"), eps)
        hidden.append(x)
    logits = None
    if "cls.predictions.transform.dense.weight" in sd:
        c = "cls.predictions."
        t = gelu_erf(x @ sd[c + "transform.dense.weight"].T + sd[c + "transform.dense.bias"])
        t = layer_norm(t, sd[c + "transform.LayerNorm.weight"], sd[c + "transform.LayerNorm.bias"], eps)
        logits = t @ g("embeddings.word_embeddings.weight").T + sd[c + "bias"]
    return np.array(hidden), np.array(attn_out), logits


def gpt2_forward(sd, cfg, ids, prefix=""):
    sd = f64(sd)
    g = lambda n: sd[prefix + n]  # noqa: E731
    D, H = cfg["n_embd"], cfg["n_head"]
    hd, eps, N = D // H, cfg["layer_norm_epsilon"], len(ids)
    x = g("wte.weight")[ids] + g("wpe.weight")[np.arange(N)]
    hidden, attn_out = [x], []
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        conv = lambda t, n: t @ g(p + n + ".weight") + g(p + n + ".bias")  # Conv1D: x W + b  # noqa: B023, E731
        a = layer_norm(x, g(p + "ln_1.weight"), g(p + "ln_1.bias"), eps)
        qkv = conv(a, "attn.c_attn")
        q, k, v = qkv[:, :D], qkv[:, D : 2 * D], qkv[:, 2 * D :]
        ctx = np.zeros((N, D))
        for h in range(H):
            sl = slice(h * hd, (h + 1) * hd)
            ctx[:, sl] = head_attention(q[:, sl], k[:, sl], v[:, sl], 1 / math.sqrt(hd), True)
        o = conv(ctx, "attn.c_proj")
        attn_out.append(o)
        x = x + o
        m = layer_norm(x, g(p + "ln_2.weight"), g(p + "ln_2.bias"), eps)
        x = x + conv(gelu_tanh(conv(m, "mlp.c_fc")), "mlp.c_proj")
        hidden.append(x)
    hidden[-1] = layer_norm(x, g("ln_f.weight"), g("ln_f.bias"), eps)
    return np.array(hidden), np.array(attn_out), hidden[-1] @ g("wte.weight").T


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return np.concatenate((-x2, x1), axis=-1)


def llama_forward(sd, cfg, ids, prefix="model."):
    sd = f64(sd)
    g = lambda n: sd[prefix + n]  # noqa: E731
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    hd = cfg.get("head_dim", D // H)
    eps, theta, N = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0), len(ids)
    inv_freq = 1.0 / (theta ** (np.arange(0, hd, 2) / hd))
    freqs = np.outer(np.arange(N), inv_freq)
    emb = np.concatenate((freqs, freqs), axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)
    x = g("embed_tokens.weight")[ids]
    hidden, attn_out = [x], []
    for i in range(cfg["num_hidden_layers"]):
        p = f"layers.{i}."
        a = rms_norm(x, g(p + "input_layernorm.weight"), eps)

        def proj(n):
            y = a @ g(p + f"self_attn.{n}.weight").T  # noqa: B023
            if prefix + p + f"self_attn.{n}.bias" in sd:  # noqa: B023
                y = y + g(p + f"self_attn.{n}.bias")  # noqa: B023
            return y

        q, k, v = proj("q_proj"), proj("k_proj"), proj("v_proj")
        ctx = np.zeros((N, H * hd))
        for h in range(H):
            kvh = h // (H // Hkv)  # repeat_kv
            qh = q[:, h * hd : (h + 1) * hd]
            kh = k[:, kvh * hd : (kvh + 1) * hd]
            vh = v[:, kvh * hd : (kvh + 1) * hd]
            qh = qh * cos + rotate_half(qh) * sin
            kh = kh * cos + rotate_half(kh) * sin
            ctx[:, h * hd : (h + 1) * hd] = head_attention(qh, kh, vh, 1 / math.sqrt(hd), True)
        o = ctx @ g(p + "self_attn.o_proj.weight").T
        if prefix + p + "self_attn.o_proj.bias" in sd:
            o = o + g(p + "self_attn.o_proj.bias")
        attn_out.append(o)
        x = x + o
        m = rms_norm(x, g(p + "post_attention_layernorm.weight"), eps)
        gate = m @ g(p + "mlp.gate_proj.weight").T
        up = m @ g(p + "mlp.up_proj.weight").T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ g(p + "mlp.down_proj.weight").T
        hidden.append(x)
    hidden[-1] = rms_norm(x, g("norm.weight"), eps)
    W = sd["lm_head.weight"] if "lm_head.weight" in sd else g("embed_tokens.weight")
    return np.array(hidden), np.array(attn_out), hidden[-1] @ W.T
