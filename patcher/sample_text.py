"""English text for the small dataset that `verify` builds and for the sample tokenizer of the tests.

Written for this project. It talks about the subject of the models it trains,
so that a tokenizer trained on it has merges for the words that matter here.
"""

SAMPLE_TEXT = """\
A reservoir is a large recurrent network whose weights are drawn at random once and then left alone.
Only the readout is trained. The reservoir turns a sequence of inputs into a sequence of states, and
each state remembers a little of every input before it, fading with time at a pace set by the leak rate.

The spectral radius of the recurrent matrix decides how long that memory lasts. Below one, an old input
fades away; near one, it echoes for many steps; above one, the states can grow until the tanh saturates
and the network forgets what it was told. Most echo state networks keep the radius a little below one.

A transformer reads the whole context at once. Attention lets every position look at every earlier
position, and the feed-forward layer then mixes the features of each position on its own. The feed-forward
layer holds most of the weights of a block, and it is the part that a reservoir can take over.

In a reservoir-augmented transformer, each block keeps its attention and its layer norms, but the
feed-forward layer becomes a fixed reservoir followed by a trained linear readout. The reservoir runs over
the positions in order, so the block gains a recurrent memory, while the number of trained weights drops.

Training such a model looks like training any other. The data loader cuts random windows out of a long
array of token ids, the model predicts each next token, and the optimizer follows the gradient of the
cross-entropy loss. The reservoir weights are buffers: they are saved with the model but never updated.

A checkpoint holds the state of the model, the state of the optimizer and the configuration that built
the model. Resuming from a checkpoint only makes sense when the checkpoint was written by the same kind
of model; otherwise the names of the weights may match while their meaning does not.

The echo of a word in a reservoir is not the word itself. It is a pattern of activity that carries some
trace of the word and of the words before it. The readout learns which parts of that pattern to trust.
Many small reservoirs, one per block, give the model many different views of the same sequence.

Deep trees grow slowly. A root finds water, a branch finds light, and the tree remembers each dry
summer in the width of a ring. The forest keeps its own records: fallen leaves, old stumps, and the
paths that animals wear into the ground by walking the same way every morning.

When the wind moves through the branches, every leaf answers a little late and a little differently.
Listen long enough and the sound of the forest tells you where the wind came from and how strong it was.
That is the idea behind a reservoir: a rich system, driven by an input, read out by a simple rule.
"""
