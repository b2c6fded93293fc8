// Shared shapes of TARIC data inside Herald. Field values are always strings
// exactly as they appear in the XML (dates "2024-01-31", decimals "12.500"),
// so nothing is rounded or reformatted between import and export.

export type UpdateType = 1 | 2 | 3; // 1 update, 2 delete, 3 insert

export interface TaricRecord {
  /** Record element name, e.g. "footnote.type". */
  type: string;
  updateType: UpdateType;
  /** Field element name -> value; absent optional fields are simply missing. */
  fields: Record<string, string>;
}

/** One stored transaction of a workbasket, in export order. */
export interface SourceTransaction {
  transactionId: number; // transactions.id
  workbasketId: number;
  /** 1-based position in its workbasket (transactions.position), when read from there: what import problems and errors call "transaction N". */
  workbasketPosition?: number;
  records: TaricRecord[];
}
