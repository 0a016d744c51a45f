"""English stopwords used by recurring-span mining.

The list is NLTK's English stopword list (``nltk.corpus.stopwords.words("english")``, 179 words, as
shipped in the ``stopwords`` corpus of nltk_data since 2018). NLTK is not a dependency, so the words are
kept here as a constant. Contractions such as ``"don't"`` never match a token of the mining tokenizer
(which splits them into ``don``, ``'``, ``t``), but their pieces (``don``, ``t``, ``s``, ``ll`` ...) are in
the list themselves, so nothing is lost.

Note: SPIDER's own ``preprocess_corpus.py`` uses a slightly different 153-word set (NLTK's list without
contractions, plus ``also``, ``could`` and ``would``); we use NLTK's list as our spec asks.
"""

from __future__ import annotations

NLTK_ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves
    he him his himself she she's her hers herself it it's its itself they them their theirs themselves
    what which who whom this that that'll these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of at by for with about
    against between into through during before after above below to from up down in out on off over
    under again further then once here there when where why how all any both each few more most other
    some such no nor not only own same so than too very s t can will just don don't should should've
    now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn
    hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
    shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
    """.split()
)

assert len(NLTK_ENGLISH_STOPWORDS) == 179, len(NLTK_ENGLISH_STOPWORDS)
